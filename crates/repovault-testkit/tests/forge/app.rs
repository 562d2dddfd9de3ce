//! GitHub App authentication: RS256 JWT → installation token → expiry.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use repovault_testkit::forge::Fixture;
use serde_json::{json, Value};

use crate::support::{header, Api};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn jwt(key_pem: &[u8], iss: Value, iat: i64, exp: i64) -> String {
    let key = EncodingKey::from_rsa_pem(key_pem).expect("App key");
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &json!({"iss": iss, "iat": iat, "exp": exp}),
        &key,
    )
    .expect("signing the JWT")
}

#[test]
fn app_jwt_gives_installation_tokens_that_expire() {
    let api = Api::start(Fixture::Small);
    let app = api.sim.app().expect("the small fixture has an App");
    let pem = std::fs::read(&app.private_key_path).expect("App private key");
    let t = now();
    let token = jwt(&pem, json!(app.app_id), t - 60, t + 540);
    let bearer = format!("Bearer {token}");

    let me: Value = api.get_with("/app", Some(&bearer)).json().expect("JSON");
    assert_eq!(me["id"], app.app_id);
    assert_eq!(me["slug"], app.slug);
    let installs: Value = api
        .get_with("/app/installations", Some(&bearer))
        .json()
        .expect("JSON");
    assert_eq!(installs.as_array().map(Vec::len), Some(2));
    let acme = app
        .installations
        .iter()
        .find(|(a, _)| a == "acme")
        .map(|(_, id)| *id)
        .expect("installation on acme");
    let by_org: Value = api
        .get_with("/orgs/acme/installation", Some(&bearer))
        .json()
        .expect("JSON");
    assert_eq!(by_org["id"], acme);
    // The client id works as the issuer too.
    let by_client_id = jwt(&pem, json!(app.client_id), t - 60, t + 540);
    assert_eq!(
        api.get_with("/app", Some(&format!("Bearer {by_client_id}")))
            .status(),
        200
    );

    // A JWT is not a token for the rest of the API.
    assert_eq!(
        api.get_with("/repos/acme/widgets", Some(&bearer)).status(),
        401
    );

    api.sim.set_token_lifetime(Duration::from_secs(2));
    let resp = api
        .client
        .post(api.url(&format!("/app/installations/{acme}/access_tokens")))
        .header("authorization", &bearer)
        .send()
        .expect("POST");
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().expect("JSON");
    let inst_token = created["token"].as_str().expect("token").to_owned();
    assert!(inst_token.starts_with("ghs_"));
    assert!(created["expires_at"].is_string());
    assert_eq!(created["repository_selection"], "all");
    let auth = format!("token {inst_token}");
    let listed: Value = api
        .get_with("/installation/repositories?per_page=100", Some(&auth))
        .json()
        .expect("JSON");
    let names: Vec<&str> = listed["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .filter_map(|r| r["full_name"].as_str())
        .collect();
    assert_eq!(listed["total_count"], names.len());
    assert!(names.contains(&"acme/private-tools"));
    assert!(!names.contains(&"oss/toolkit"));
    let private = api.get_with("/repos/acme/private-tools", Some(&auth));
    assert_eq!(private.status(), 200);
    assert_eq!(header(&private, "x-ratelimit-limit"), "5000");
    assert_eq!(api.get_with("/user", Some(&auth)).status(), 403);

    // Expired tokens get 401 like unknown ones (bounded wait past expires_at).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = 200;
    while Instant::now() < deadline {
        status = api
            .get_with("/repos/acme/widgets", Some(&auth))
            .status()
            .as_u16();
        if status == 401 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(status, 401);

    // Narrowed tokens see only the repositories they were asked for.
    api.sim.set_token_lifetime(Duration::from_secs(3600));
    let narrowed: Value = api
        .client
        .post(api.url(&format!("/app/installations/{acme}/access_tokens")))
        .header("authorization", &bearer)
        .json(&json!({"repositories": ["widgets"]}))
        .send()
        .expect("POST")
        .json()
        .expect("JSON");
    assert_eq!(narrowed["repository_selection"], "selected");
    let auth = format!("token {}", narrowed["token"].as_str().expect("token"));
    assert_eq!(
        api.get_with("/repos/acme/private-tools", Some(&auth))
            .status(),
        404
    );
    assert_eq!(
        api.get_with("/repos/acme/widgets", Some(&auth)).status(),
        200
    );
}

#[test]
fn bad_jwts_are_refused_with_githubs_messages() {
    let api = Api::start(Fixture::Small);
    let app = api.sim.app().expect("App");
    let pem = std::fs::read(&app.private_key_path).expect("App private key");
    let t = now();
    let message = |token: &str| {
        let resp = api.get_with("/app", Some(&format!("Bearer {token}")));
        assert_eq!(resp.status(), 401);
        resp.json::<Value>().expect("JSON")["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        message(&jwt(&pem, json!(app.app_id), t - 60, t + 3600)).contains("too far in the future")
    );
    assert!(message(&jwt(&pem, json!(app.app_id), t - 1200, t - 600)).contains("'Expiration time'"));
    assert_eq!(
        message(&jwt(&pem, json!(999_999), t - 60, t + 300)),
        "Integration not found"
    );
    // Signed with another key: the simulator's CA key is not the App's.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
    let forged = jwt(
        other.serialize_pem().as_bytes(),
        json!(app.app_id),
        t - 60,
        t + 300,
    );
    assert_eq!(message(&forged), "A JSON web token could not be decoded");
    // No JWT at all on /app.
    assert_eq!(api.get("/app").status(), 401);
}
