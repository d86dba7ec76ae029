//! The Django keys fetched from an SSM SecureString parameter, as in AWS (moto serves SSM).

use session_store::{
    AwsEnv, Codec, DjangoCodec, DjangoKeys, Secret, SessionData, StoreConfig, Timestamp,
};
use session_store::{CodecConfig, DjangoSecrets};

/// Settings as Lambda gives them, pointed at the local endpoint.
fn aws() -> AwsEnv {
    AwsEnv::from_lookup(testkit::lambda_env(testkit::ssm_endpoint())).unwrap()
}

fn config(parameter: &str) -> StoreConfig {
    StoreConfig::from_lookup(|name| match name {
        "SESSION_CODEC" => Some("django".into()),
        "DJANGO_SECRET_KEY_PARAMETER" => Some(parameter.into()),
        _ => None,
    })
    .unwrap()
}

#[tokio::test]
async fn keys_come_from_a_secure_string_parameter_fetched_once() {
    let aws = aws();
    let name = format!("/{}/django-secret", testkit::unique_table_name("app"));
    testkit::raw_json_call(
        "AmazonSSM.PutParameter",
        &serde_json::json!({
            "Name": name,
            "Type": "SecureString",
            "Value": "the-new-key\nthe-old-key\n",
        }),
    )
    .unwrap();

    let unfetched = config(&name);
    assert!(
        unfetched
            .codec
            .build(unfetched.max_decompressed_bytes)
            .is_err(),
        "no codec before the fetch"
    );
    let fetched = unfetched.fetch_secrets(&aws).await.unwrap();
    let keys = DjangoKeys {
        secret_key: Secret::new("the-new-key"),
        fallbacks: vec![Secret::new("the-old-key")],
    };
    assert_eq!(
        fetched.codec,
        CodecConfig::Django(DjangoSecrets::Keys(keys))
    );

    // Data signed with the key now in the fallbacks reads with the fetched codec.
    let old = DjangoCodec::new(&DjangoKeys {
        secret_key: Secret::new("the-old-key"),
        fallbacks: vec![],
    });
    let mut data = SessionData::new();
    data.insert("k".into(), 1.into());
    let raw = old.encode(&data, Timestamp::from_epoch_seconds(0)).unwrap();
    assert_eq!(
        fetched
            .codec
            .build(fetched.max_decompressed_bytes)
            .unwrap()
            .decode(&raw),
        Ok(data)
    );
}

#[tokio::test]
async fn a_missing_parameter_is_a_clear_start_up_error() {
    let err = config("/no/such/parameter")
        .fetch_secrets(&aws())
        .await
        .unwrap_err();
    assert_eq!(err.name, "DJANGO_SECRET_KEY_PARAMETER");
    assert!(err.reason.contains("ParameterNotFound"), "{}", err.reason);
}
