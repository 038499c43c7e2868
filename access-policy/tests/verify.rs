//! The token checks every service relies on, against a real Redis and a key set served over
//! HTTP: each forged, stale or misdirected token is refused, and a revoked session ends at once
//! even while the verifier remembers it alive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use access_policy::verify::{REVOCATION_CHANNEL, session_key};
use access_policy::{AccessClaims, TokenError, TokenVerifier, VerifierSettings};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use redis::AsyncCommands;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ISSUER: &str = "https://wardline.test/auth";
const AUDIENCE: &str = "https://wardline.test/fhir";

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

struct Signer {
    kid: String,
    key: EncodingKey,
    public_pem: String,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let secret = p256::SecretKey::generate();
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        Signer {
            kid: kid.to_owned(),
            key: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            public_pem: secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        }
    }

    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        jwk
    }

    fn sign(&self, claims: &AccessClaims) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// Serves `set` as JSON to every request, on a free port.
async fn serve_jwks(set: JwkSet) -> String {
    serve_changing_jwks(Arc::new(Mutex::new(set))).await
}

/// Serves whatever `set` holds at the time of each request, on a free port.
async fn serve_changing_jwks(set: Arc<Mutex<JwkSet>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body = serde_json::to_string(&*set.lock().unwrap()).unwrap();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/jwks")
}

fn claims(sid: &str) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        iss: ISSUER.to_owned(),
        sub: "nurse".to_owned(),
        aud: AUDIENCE.to_owned(),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: "wardline-web".to_owned(),
        scope: "user/*.cruds openid".to_owned(),
        sid: sid.to_owned(),
        role: Some("nurse".to_owned()),
        fhir_user: Some("Practitioner/demo-nurse".to_owned()),
        patient: None,
        name: None,
        classes: Vec::new(),
    }
}

struct World {
    signer: Signer,
    verifier: TokenVerifier,
    redis: redis::aio::MultiplexedConnection,
    sid: String,
}

async fn world() -> World {
    let signer = Signer::new("key-1");
    let jwks_url = serve_jwks(JwkSet {
        keys: vec![signer.jwk()],
    })
    .await;
    world_with(signer, jwks_url).await
}

async fn world_with(signer: Signer, jwks_url: String) -> World {
    let verifier = TokenVerifier::new(
        VerifierSettings {
            issuer: ISSUER.to_owned(),
            audiences: vec![AUDIENCE.to_owned()],
            jwks_url,
            session_cache: Duration::from_secs(60),
        },
        &redis_url(),
    )
    .unwrap();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let sid = uuid::Uuid::new_v4().to_string();
    let _: () = redis.set_ex(session_key(&sid), "{}", 600).await.unwrap();
    World {
        signer,
        verifier,
        redis,
        sid,
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_good_token_is_the_principal_it_names() {
    let world = world().await;
    let principal = world
        .verifier
        .verify(&world.signer.sign(&claims(&world.sid)))
        .await
        .unwrap();
    assert_eq!(principal.subject, "nurse");
    assert_eq!(principal.role, Some(access_policy::Role::Nurse));
    assert_eq!(
        principal.fhir_user.as_deref(),
        Some("Practitioner/demo-nurse")
    );
}

#[tokio::test]
async fn forged_stale_and_misdirected_tokens_are_refused() {
    let world = world().await;
    let now = chrono::Utc::now().timestamp();
    let good = world.signer.sign(&claims(&world.sid));
    let mut cases: Vec<(&str, String)> = Vec::new();

    let payload = b64(serde_json::to_string(&claims(&world.sid))
        .unwrap()
        .as_bytes());
    cases.push((
        "alg none",
        format!(
            "{}.{payload}.",
            b64(br#"{"alg":"none","typ":"JWT","kid":"key-1"}"#)
        ),
    ));
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some("key-1".to_owned());
    cases.push((
        "HS256 signed with the public key",
        jsonwebtoken::encode(
            &hs256,
            &claims(&world.sid),
            &EncodingKey::from_secret(world.signer.public_pem.as_bytes()).unwrap(),
        )
        .unwrap(),
    ));
    let expired = AccessClaims {
        exp: now - 60,
        iat: now - 960,
        nbf: now - 960,
        ..claims(&world.sid)
    };
    cases.push(("expired", world.signer.sign(&expired)));
    let early = AccessClaims {
        nbf: now + 300,
        ..claims(&world.sid)
    };
    cases.push(("not yet valid", world.signer.sign(&early)));
    let elsewhere = AccessClaims {
        aud: "https://other.test/fhir".to_owned(),
        ..claims(&world.sid)
    };
    cases.push(("another audience", world.signer.sign(&elsewhere)));
    let stranger = AccessClaims {
        iss: "https://evil.test/auth".to_owned(),
        ..claims(&world.sid)
    };
    cases.push(("another issuer", world.signer.sign(&stranger)));
    let parts: Vec<&str> = good.split('.').collect();
    let promoted = AccessClaims {
        role: Some("admin".to_owned()),
        ..claims(&world.sid)
    };
    cases.push((
        "tampered payload",
        format!(
            "{}.{}.{}",
            parts[0],
            b64(serde_json::to_string(&promoted).unwrap().as_bytes()),
            parts[2]
        ),
    ));
    let unknown = Signer::new("key-unknown");
    cases.push(("unknown kid", unknown.sign(&claims(&world.sid))));
    let impostor = Signer {
        kid: "key-1".to_owned(),
        ..Signer::new("key-1")
    };
    cases.push((
        "the right kid, another key",
        impostor.sign(&claims(&world.sid)),
    ));
    cases.push(("no session", world.signer.sign(&claims("no-such-session"))));
    cases.push(("not a JWT", "not-a-token".to_owned()));

    for (what, token) in cases {
        let refused = world.verifier.verify(&token).await;
        assert!(
            matches!(refused, Err(ref error) if !error.is_unavailable()),
            "{what}: {refused:?}"
        );
    }
    // And the good one still passes: the refusals were for what was wrong with each.
    world.verifier.verify(&good).await.unwrap();
}

#[tokio::test]
async fn a_revoked_session_ends_at_once_though_remembered_alive() {
    let mut world = world().await;
    let token = world.signer.sign(&claims(&world.sid));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !world.verifier.hears_revocations() {
        assert!(Instant::now() < deadline, "never subscribed to revocations");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    world.verifier.verify(&token).await.unwrap();
    // Remembered alive for a minute (the settings): gone from Redis, it is still accepted...
    let _: () = world.redis.del(session_key(&world.sid)).await.unwrap();
    world.verifier.verify(&token).await.unwrap();
    // ...until the identity service announces the end.
    let _: () = world
        .redis
        .publish(REVOCATION_CHANNEL, &world.sid)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match world.verifier.verify(&token).await {
            Err(TokenError::SessionEnded) => break,
            other => assert!(
                Instant::now() < deadline,
                "still accepted 5 s after the revocation: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_token_that_checked_out_vouches_only_for_itself_and_only_until_it_expires() {
    let world = world().await;
    let now = chrono::Utc::now().timestamp();
    let short = AccessClaims {
        exp: now + 1,
        ..claims(&world.sid)
    };
    let token = world.signer.sign(&short);
    world.verifier.verify(&token).await.unwrap();
    world.verifier.verify(&token).await.unwrap();
    // The same token changed anywhere is another token, checked in full.
    let parts: Vec<&str> = token.split('.').collect();
    let promoted = AccessClaims {
        role: Some("admin".to_owned()),
        ..short.clone()
    };
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(serde_json::to_string(&promoted).unwrap().as_bytes()),
        parts[2]
    );
    let resigned = format!("{}.{}.{}", parts[0], parts[1], &parts[2][1..]);
    for (what, other) in [
        ("tampered payload", tampered),
        ("another signature", resigned),
    ] {
        let refused = world.verifier.verify(&other).await;
        assert!(
            matches!(refused, Err(TokenError::Invalid(_))),
            "{what}: {refused:?}"
        );
    }
    // Past its expiry and the five seconds' leeway, it is refused like any expired token.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let refused = world.verifier.verify(&token).await;
    assert!(
        matches!(refused, Err(TokenError::Invalid(ref why)) if why.contains("Expired")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_token_whose_key_is_withdrawn_is_refused_once_the_keys_are_fetched_again() {
    let old = Signer::new("key-old");
    let new = Signer::new("key-new");
    let published = Arc::new(Mutex::new(JwkSet {
        keys: vec![old.jwk()],
    }));
    let jwks_url = serve_changing_jwks(published.clone()).await;
    let world = world_with(old, jwks_url).await;
    let token = world.signer.sign(&claims(&world.sid));
    world.verifier.verify(&token).await.unwrap();
    // The old key is withdrawn; the verifier learns of it from the first token of the new key
    // (after the five seconds between fetches).
    *published.lock().unwrap() = JwkSet {
        keys: vec![new.jwk()],
    };
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    world
        .verifier
        .verify(&new.sign(&claims(&world.sid)))
        .await
        .unwrap();
    let refused = world.verifier.verify(&token).await;
    assert!(
        matches!(refused, Err(TokenError::UnknownKey)),
        "{refused:?}"
    );
}
