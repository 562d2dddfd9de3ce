//! Consolidated bases: one bundle made of the packs of a whole chain, byte for byte where
//! possible, so that a content-defined-chunking store keeps what it already has and a new base
//! costs little more than its newest increment.
//!
//! A git pack is a header (`PACK`, version, object count), entries, and a checksum of all that.
//! The entries of several packs can be put one after the other into a new pack: an `OFS_DELTA`
//! names its base by the distance back to it, which stays the same inside a copied pack, and a
//! `REF_DELTA` (what thin packs use for bases in earlier links) names its base by id, which is
//! now in the same pack. What breaks this is an object stored in two links (git re-sends objects
//! after force-pushes and squash merges): git refuses a pack holding a delta base twice. So every
//! link is indexed first (`git bundle unbundle` into a scratch repository that borrows the
//! mirror's objects) to learn which entry holds which object; later copies are left out, deltas
//! that pointed at a left-out copy are turned into `REF_DELTA`s, and `OFS_DELTA` distances are
//! recomputed. The result is proven by unbundling it into an empty repository before it is used;
//! the caller falls back to a freshly packed base when anything here fails.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::cmd::Git;
use crate::{GitError, RefsFile};

const OBJ_OFS_DELTA: u8 = 6;
const OBJ_REF_DELTA: u8 = 7;

/// Where a bundle's pack starts, and what it is.
struct BundlePack {
    path: PathBuf,
    /// Offset of `PACK` in the file.
    start: u64,
    /// Offset of the trailing checksum.
    end: u64,
    sha256: bool,
}

/// One object entry of a link's pack: its id and where it starts and ends (relative to `PACK`).
struct Entry {
    oid: String,
    offset: u64,
    end: u64,
}

fn corrupt(what: impl Into<String>) -> GitError {
    GitError::Command {
        operation: "consolidating a chain".into(),
        kind: crate::FailureKind::Corrupt,
        message: what.into(),
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> GitError + '_ {
    move |e| GitError::io(format!("reading {}", path.display()), e)
}

fn open_pack(path: &Path) -> Result<BundlePack, GitError> {
    let mut reader = BufReader::new(File::open(path).map_err(io_err(path))?);
    let mut offset = 0u64;
    let mut line = Vec::new();
    let mut sha256 = false;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io_err(path))?;
        if n == 0 {
            return Err(corrupt(format!(
                "{}: no pack after the header",
                path.display()
            )));
        }
        offset += n as u64;
        if line == b"\n" {
            break;
        }
        if line.starts_with(b"@object-format=sha256") {
            sha256 = true;
        }
    }
    let mut head = [0u8; 12];
    reader.read_exact(&mut head).map_err(io_err(path))?;
    if &head[..4] != b"PACK"
        || !matches!(
            u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
            2 | 3
        )
    {
        return Err(corrupt(format!(
            "{}: not a version 2 or 3 pack",
            path.display()
        )));
    }
    let len = std::fs::metadata(path).map_err(io_err(path))?.len();
    let trailer = if sha256 { 32 } else { 20 };
    Ok(BundlePack {
        path: path.to_owned(),
        start: offset,
        end: len.saturating_sub(trailer),
        sha256,
    })
}

/// The entries of `pack` in file order, from git's index of it.
fn entries(
    pack: &BundlePack,
    scratch: &Path,
    mirror_objects: &Path,
) -> Result<Vec<Entry>, GitError> {
    reset_scratch(scratch, Some(mirror_objects))?;
    Git::new("bundle unbundle")
        .git_dir(scratch)
        .args(["bundle", "unbundle"])
        .arg(pack.path.display().to_string())
        .run()?;
    let idx = only_index(scratch)?;
    let out = Git::new("show-index")
        .git_dir(scratch)
        .args(["show-index"])
        .args(if pack.sha256 {
            vec!["--object-format=sha256"]
        } else {
            Vec::new()
        })
        .stdin(std::fs::read(&idx).map_err(io_err(&idx))?)
        .run()?;
    let length = pack.end - pack.start;
    let mut list: Vec<(u64, String)> = Vec::new();
    for line in out.stdout_str().lines() {
        let mut parts = line.split_whitespace();
        let (Some(off), Some(oid)) = (parts.next(), parts.next()) else {
            continue;
        };
        let off: u64 = off
            .parse()
            .map_err(|_| corrupt(format!("show-index printed {line:?}")))?;
        // `--fix-thin` appended the bases a thin pack lacks; they are not part of the link.
        if off < length {
            list.push((off, oid.to_owned()));
        }
    }
    list.sort();
    let mut out = Vec::with_capacity(list.len());
    for (i, (offset, oid)) in list.iter().enumerate() {
        let end = list.get(i + 1).map_or(length, |(o, _)| *o);
        out.push(Entry {
            oid: oid.clone(),
            offset: *offset,
            end,
        });
    }
    Ok(out)
}

fn reset_scratch(scratch: &Path, alternates: Option<&Path>) -> Result<(), GitError> {
    match std::fs::remove_dir_all(scratch) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(GitError::io(format!("clearing {}", scratch.display()), e)),
    }
    crate::Mirror::open_or_init(scratch)?;
    if let Some(objects) = alternates {
        let info = scratch.join("objects/info");
        std::fs::create_dir_all(&info)
            .map_err(|e| GitError::io(format!("creating {}", info.display()), e))?;
        let abs = std::path::absolute(objects)
            .map_err(|e| GitError::io(format!("resolving {}", objects.display()), e))?;
        std::fs::write(info.join("alternates"), format!("{}\n", abs.display()))
            .map_err(|e| GitError::io(format!("writing {}", info.display()), e))?;
    }
    Ok(())
}

fn only_index(scratch: &Path) -> Result<PathBuf, GitError> {
    let dir = scratch.join("objects/pack");
    let mut idx = std::fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"));
    match (idx.next(), idx.next()) {
        (Some(p), None) => Ok(p),
        _ => Err(corrupt(format!(
            "expected one pack index in {}",
            dir.display()
        ))),
    }
}

/// An entry header: type, the size varint as written, and for `OFS_DELTA` the distance back to
/// the base; returns also how many bytes the header took (delta base id included).
struct Header {
    size_bytes: Vec<u8>,
    ofs: Option<u64>,
    ref_base: Option<Vec<u8>>,
    len: usize,
}

fn parse_header(buf: &[u8], hash_len: usize) -> Result<Header, GitError> {
    let short = || corrupt("pack entry header cut off");
    let first = *buf.first().ok_or_else(short)?;
    let kind = (first >> 4) & 7;
    let mut i = 1;
    let mut c = first;
    while c & 0x80 != 0 {
        c = *buf.get(i).ok_or_else(short)?;
        i += 1;
    }
    let size_bytes = buf[..i].to_vec();
    let mut ofs = None;
    let mut ref_base = None;
    if kind == OBJ_OFS_DELTA {
        let mut c = *buf.get(i).ok_or_else(short)?;
        i += 1;
        let mut v = u64::from(c & 0x7f);
        while c & 0x80 != 0 {
            c = *buf.get(i).ok_or_else(short)?;
            i += 1;
            v = ((v + 1) << 7) | u64::from(c & 0x7f);
        }
        ofs = Some(v);
    } else if kind == OBJ_REF_DELTA {
        ref_base = Some(buf.get(i..i + hash_len).ok_or_else(short)?.to_vec());
        i += hash_len;
    }
    Ok(Header {
        size_bytes,
        ofs,
        ref_base,
        len: i,
    })
}

fn encode_ofs(mut v: u64) -> Vec<u8> {
    let mut out = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        v -= 1;
        out.push(0x80 | (v & 0x7f) as u8);
        v >>= 7;
    }
    out.reverse();
    out
}

/// `size_bytes` with the type bits of the first byte replaced.
fn with_kind(size_bytes: &[u8], kind: u8) -> Vec<u8> {
    let mut out = size_bytes.to_vec();
    out[0] = (out[0] & 0x8f) | (kind << 4);
    out
}

enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha1(h) => sha1::Digest::update(h, data),
            Self::Sha256(h) => sha2::Digest::update(h, data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Sha1(h) => sha1::Digest::finalize(h).to_vec(),
            Self::Sha256(h) => sha2::Digest::finalize(h).to_vec(),
        }
    }
}

/// Writes through to a file, hashing everything written, and counts bytes.
struct PackWriter {
    out: BufWriter<File>,
    hash: Hasher,
    written: u64,
    path: PathBuf,
}

impl PackWriter {
    fn write(&mut self, data: &[u8]) -> Result<(), GitError> {
        self.hash.update(data);
        self.written += data.len() as u64;
        self.out
            .write_all(data)
            .map_err(|e| GitError::io(format!("writing {}", self.path.display()), e))
    }
}

/// Writes to `out` one bundle holding every object of the `links` (in order; the last may be a
/// thin increment) with the refs of `refs` plus `refs/repovault-history/<oid>` for each of
/// `history` (heads the refs no longer reach), and proves it. `work` is scratch space.
pub(crate) fn consolidate(
    mirror_objects: &Path,
    links: &[PathBuf],
    refs: &RefsFile,
    history: &[String],
    work: &Path,
    out: &Path,
) -> Result<(), GitError> {
    let packs: Vec<BundlePack> = links
        .iter()
        .map(|p| open_pack(p))
        .collect::<Result<_, _>>()?;
    let sha256 = packs.first().is_some_and(|p| p.sha256);
    if packs.iter().any(|p| p.sha256 != sha256) {
        return Err(corrupt("links with different object formats"));
    }
    let hash_len = if sha256 { 32 } else { 20 };
    let scratch = work.join("index.git");
    let mut per_link = Vec::with_capacity(packs.len());
    for pack in &packs {
        per_link.push(entries(pack, &scratch, mirror_objects)?);
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut total: u32 = 0;
    for list in &per_link {
        for e in list {
            if seen.insert(e.oid.as_str()) {
                total = total
                    .checked_add(1)
                    .ok_or_else(|| corrupt("more than 2^32 objects"))?;
            }
        }
    }

    let file =
        File::create(out).map_err(|e| GitError::io(format!("creating {}", out.display()), e))?;
    let mut header = if sha256 {
        String::from("# v3 git bundle\n@object-format=sha256\n")
    } else {
        String::from("# v2 git bundle\n")
    };
    for (name, oid) in &refs.refs {
        header.push_str(&format!("{oid} {name}\n"));
    }
    for oid in history {
        header.push_str(&format!("{oid} refs/repovault-history/{oid}\n"));
    }
    header.push('\n');
    let mut raw = BufWriter::new(file);
    raw.write_all(header.as_bytes())
        .map_err(|e| GitError::io(format!("writing {}", out.display()), e))?;
    let mut w = PackWriter {
        out: raw,
        hash: if sha256 {
            Hasher::Sha256(<sha2::Sha256 as sha2::Digest>::new())
        } else {
            Hasher::Sha1(<sha1::Sha1 as sha1::Digest>::new())
        },
        written: 0,
        path: out.to_owned(),
    };
    let mut pack_head = b"PACK".to_vec();
    pack_head.extend_from_slice(&2u32.to_be_bytes());
    pack_head.extend_from_slice(&total.to_be_bytes());
    w.write(&pack_head)?;

    let mut kept: HashSet<String> = HashSet::new();
    for (pack, list) in packs.iter().zip(&per_link) {
        let mut file = File::open(&pack.path).map_err(io_err(&pack.path))?;
        // Where this link's entries went in the output (None: left out as a duplicate).
        let mut moved: HashMap<u64, Option<u64>> = HashMap::new();
        let by_offset: HashMap<u64, &str> =
            list.iter().map(|e| (e.offset, e.oid.as_str())).collect();
        for e in list {
            if kept.contains(&e.oid) {
                moved.insert(e.offset, None);
                continue;
            }
            let mut buf = vec![0u8; usize::try_from((e.end - e.offset).min(64)).unwrap_or(64)];
            file.seek(SeekFrom::Start(pack.start + e.offset))
                .map_err(io_err(&pack.path))?;
            file.read_exact(&mut buf).map_err(io_err(&pack.path))?;
            let h = parse_header(&buf, hash_len)?;
            let here = w.written;
            let new_header = match h.ofs {
                Some(back) => {
                    let base_at = e
                        .offset
                        .checked_sub(back)
                        .ok_or_else(|| corrupt("delta base before the pack"))?;
                    match moved.get(&base_at) {
                        Some(Some(new_base_at)) => {
                            let mut v = h.size_bytes.clone();
                            v.extend(encode_ofs(here - new_base_at));
                            v
                        }
                        Some(None) => {
                            // Its base was a duplicate: name it by id, it is elsewhere in the pack.
                            let oid = by_offset
                                .get(&base_at)
                                .ok_or_else(|| corrupt("delta base not at an entry"))?;
                            let mut v = with_kind(&h.size_bytes, OBJ_REF_DELTA);
                            v.extend(hex::decode(oid).map_err(|_| corrupt("bad object id"))?);
                            v
                        }
                        None => return Err(corrupt("delta base not at an entry")),
                    }
                }
                None => {
                    let mut v = h.size_bytes.clone();
                    if let Some(base) = &h.ref_base {
                        v.extend_from_slice(base);
                    }
                    v
                }
            };
            w.write(&new_header)?;
            file.seek(SeekFrom::Start(pack.start + e.offset + h.len as u64))
                .map_err(io_err(&pack.path))?;
            let mut rest = (&mut file).take(e.end - e.offset - h.len as u64);
            let mut chunk = vec![0u8; 1 << 16];
            loop {
                let n = rest.read(&mut chunk).map_err(io_err(&pack.path))?;
                if n == 0 {
                    break;
                }
                w.write(&chunk[..n])?;
            }
            moved.insert(e.offset, Some(here));
            kept.insert(e.oid.clone());
        }
    }
    let PackWriter {
        out: mut raw, hash, ..
    } = w;
    raw.write_all(&hash.finish())
        .and_then(|()| raw.flush())
        .map_err(|e| GitError::io(format!("writing {}", out.display()), e))?;
    drop(raw);

    // Proof: the bundle unpacks in an empty repository and has every object the refs name.
    let proof = work.join("proof.git");
    reset_scratch(&proof, None)?;
    Git::new("bundle unbundle")
        .git_dir(&proof)
        .args(["bundle", "unbundle"])
        .arg(out.display().to_string())
        .run()?;
    let named: Vec<&str> = refs
        .tips()
        .into_iter()
        .chain(history.iter().map(String::as_str))
        .collect();
    let have = crate::Mirror::open_or_init(&proof)?.existing_objects(named.iter().copied())?;
    let _ = std::fs::remove_dir_all(&proof);
    let _ = std::fs::remove_dir_all(&scratch);
    if named.iter().any(|t| !have.contains(*t)) {
        return Err(corrupt(
            "the consolidated bundle lacks objects its refs name",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_ofs(b: &[u8]) -> u64 {
        let mut i = 0;
        let mut c = b[i];
        i += 1;
        let mut v = u64::from(c & 0x7f);
        while c & 0x80 != 0 {
            c = b[i];
            i += 1;
            v = ((v + 1) << 7) | u64::from(c & 0x7f);
        }
        v
    }

    #[test]
    fn offset_encoding_round_trips() {
        for v in [
            0u64,
            1,
            127,
            128,
            129,
            16_383,
            16_384,
            16_511,
            16_512,
            1 << 30,
            u64::from(u32::MAX),
        ] {
            assert_eq!(decode_ofs(&encode_ofs(v)), v, "{v}");
        }
        // Known value: 128 is [0x80, 0x00] in git's offset encoding.
        assert_eq!(encode_ofs(128), vec![0x80, 0x00]);
    }

    #[test]
    fn headers_parse() {
        // blob (3), size 5: 0x35.
        let h = parse_header(&[0x35, 1, 2], 20).expect("ok");
        assert_eq!((h.len, h.ofs, h.ref_base), (1, None, None));
        // OFS_DELTA, size 200 (two size bytes), back 128.
        let mut b = vec![0x80 | (6 << 4) | 8, 12];
        b.extend(encode_ofs(128));
        let h = parse_header(&b, 20).expect("ok");
        assert_eq!((h.len, h.ofs), (4, Some(128)));
        assert_eq!(with_kind(&h.size_bytes, 7)[0] >> 4 & 7, 7);
        assert!(parse_header(&[0x80 | (6 << 4)], 20).is_err());
    }
}
