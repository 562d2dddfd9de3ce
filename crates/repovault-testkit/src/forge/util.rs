//! Small helpers shared by the simulator: GitHub's timestamp format, legacy node ids, a seeded
//! generator for fixture content, and hashing.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Seconds since the Unix epoch, as the model stores every timestamp.
pub(crate) type Epoch = i64;

/// GitHub's timestamp format: ISO 8601 in UTC with seconds and a `Z`, e.g. `2011-01-26T19:01:12Z`.
pub(crate) fn iso(t: Epoch) -> String {
    match jiff::Timestamp::from_second(t) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => "1970-01-01T00:00:00Z".to_owned(),
    }
}

/// Parses a `since`-style timestamp: full ISO 8601 (`2024-01-02T03:04:05Z`, offsets allowed)
/// or a bare date (midnight UTC), as GitHub accepts.
pub(crate) fn parse_iso(s: &str) -> Option<Epoch> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts.as_second());
    }
    let date: jiff::civil::Date = s.parse().ok()?;
    let ts = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(ts.as_second())
}

/// Current time in epoch seconds.
pub(crate) fn now() -> Epoch {
    jiff::Timestamp::now().as_second()
}

/// GitHub's legacy global node id: base64 of `0<len(type)>:<type><id>`, e.g. `MDQ6VXNlcjE=`
/// for user 1.
pub(crate) fn node_id(kind: &str, id: impl std::fmt::Display) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("0{}:{kind}{id}", kind.len()))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SplitMix64: a tiny seeded generator, so fixtures are identical on every run.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; 0 gives 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// `len` pseudo-random bytes.
    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Bytes that depend only on `seed` and `len`, for assets and LFS objects that are generated
/// again whenever they are served instead of being kept in memory.
pub(crate) fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

/// Deterministic hex id of `len` characters derived from `seed` (gist ids, token bodies).
pub(crate) fn seeded_hex(seed: &str, len: usize) -> String {
    let mut out = String::new();
    let mut round = 0u32;
    while out.len() < len {
        out.push_str(&sha256_hex(format!("{seed}/{round}").as_bytes()));
        round += 1;
    }
    out.truncate(len);
    out
}

/// 32 bytes from the operating system, for the per-start secret that signs download URLs and
/// makes installation tokens unguessable. Falls back to the clock and PID, which is still
/// unique per start (the secret protects test data on loopback, nothing more).
pub(crate) fn random_secret() -> [u8; 32] {
    use std::io::Read as _;
    let mut secret = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut secret));
    if read.is_err() {
        let seed = format!("{:?}/{}", std::time::SystemTime::now(), std::process::id());
        secret.copy_from_slice(&Sha256::digest(seed.as_bytes()));
    }
    secret
}

/// Decodes `%XX` escapes in a URL path segment (a `+` stays a `+`, as in paths).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A keyed digest (sha256 over secret and message) for signed URLs; not exposed to clients as
/// anything but an opaque string.
pub(crate) fn sign(secret: &[u8; 32], message: &str) -> String {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(message.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_match_githubs_legacy_format() {
        assert_eq!(node_id("User", 1), "MDQ6VXNlcjE=");
        assert_eq!(
            node_id("Repository", 1296269),
            "MDEwOlJlcG9zaXRvcnkxMjk2MjY5"
        );
    }

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(iso(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(parse_iso("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_iso("2023-11-14"), Some(1_699_920_000));
        assert_eq!(parse_iso("yesterday"), None);
    }

    #[test]
    fn percent_decoding_of_path_segments() {
        assert_eq!(percent_decode("good%20first%2Fissue"), "good first/issue");
        assert_eq!(percent_decode("a+b%"), "a+b%");
    }
}
