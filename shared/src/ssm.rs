//! SSM's GetParameter, the one SSM call the service makes, signed with SigV4 and sent
//! over the same TLS stack as DynamoDB. The generated SDK client for the whole of SSM
//! took longer to compile than the rest of the workspace together and grew every
//! binary, for a call made once per container.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const TARGET: &str = "AmazonSSM.GetParameter";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SsmError {
    /// SSM answered with an error, such as `ParameterNotFound` or `AccessDeniedException`.
    #[error("{code}: {message}")]
    Service { code: String, message: String },
    #[error("no response from SSM: {0}")]
    Transport(String),
    #[error("unreadable answer from SSM: {0}")]
    Response(String),
}

impl SsmError {
    /// Throttling, SSM's own faults and lost connections pass; the rest will not.
    fn is_transient(&self) -> bool {
        match self {
            Self::Service { code, .. } => matches!(
                code.as_str(),
                "ThrottlingException" | "InternalServerError" | "ServiceUnavailable"
            ),
            Self::Transport(_) => true,
            Self::Response(_) => false,
        }
    }
}

/// Where and as whom to call SSM.
pub(crate) struct SsmTarget<'a> {
    pub region: &'a str,
    pub credentials: &'a Credentials,
    /// An override such as `http://127.0.0.1:5000`; else SSM's regional endpoint.
    pub endpoint: Option<&'a str>,
}

impl SsmTarget<'_> {
    /// The parameter's value, decrypted, with up to three tries of transient failures.
    pub async fn get_parameter(&self, name: &str) -> Result<String, SsmError> {
        let mut attempt = 0;
        loop {
            crate::retry::backoff(attempt, Duration::from_millis(100), Duration::from_secs(1))
                .await;
            match tokio::time::timeout(TIMEOUT, self.try_get_parameter(name)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if !e.is_transient() || attempt + 1 == ATTEMPTS => return Err(e),
                Err(_) if attempt + 1 == ATTEMPTS => {
                    return Err(SsmError::Transport(format!("timed out after {TIMEOUT:?}")));
                }
                Ok(Err(_)) | Err(_) => attempt += 1,
            }
        }
    }

    fn url(&self) -> String {
        match self.endpoint {
            Some(endpoint) => format!("{}/", endpoint.trim_end_matches('/')),
            None => {
                let domain = if self.region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("https://ssm.{}.{domain}/", self.region)
            }
        }
    }

    async fn try_get_parameter(&self, name: &str) -> Result<String, SsmError> {
        let body = serde_json::json!({ "Name": name, "WithDecryption": true }).to_string();
        let request = self.signed_request(body)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| SsmError::Transport(format!("no root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
        let response = client
            .request(request)
            .await
            .map_err(|e| SsmError::Transport(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| SsmError::Transport(e.to_string()))?
            .to_bytes();
        parse_answer(status.as_u16(), &bytes)
    }

    fn signed_request(&self, body: String) -> Result<http::Request<Full<Bytes>>, SsmError> {
        let url = self.url();
        let unsigned = |e: &dyn std::fmt::Display| SsmError::Transport(format!("cannot sign: {e}"));
        let uri: http::Uri = url.parse().map_err(|e| unsigned(&e))?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| unsigned(&"the endpoint has no host"))?;
        let identity = Identity::from(self.credentials.clone());
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name("ssm")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| unsigned(&e))?
            .into();
        let headers = [
            ("host", host.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", TARGET),
        ];
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| unsigned(&e))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| unsigned(&e))?
            .into_parts();
        let mut request = http::Request::post(uri)
            .header("host", host.as_str())
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", TARGET)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| unsigned(&e))?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

/// `{"Parameter": {"Value": ...}}` on success; `{"__type": ..., "message": ...}` on
/// failure, where the type may carry a namespace prefix (`com.amazonaws...#Name`).
fn parse_answer(status: u16, body: &[u8]) -> Result<String, SsmError> {
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| SsmError::Response(format!("HTTP {status} with a body that is not JSON")))?;
    if (200..300).contains(&status) {
        return json["Parameter"]["Value"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| SsmError::Response("no Parameter.Value in the answer".into()));
    }
    let code = json["__type"]
        .as_str()
        .and_then(|t| t.rsplit('#').next())
        .unwrap_or(if status >= 500 {
            "InternalServerError"
        } else {
            "UnknownError"
        })
        .to_owned();
    let message = json["message"]
        .as_str()
        .or_else(|| json["Message"].as_str())
        .unwrap_or("")
        .to_owned();
    Err(SsmError::Service { code, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_yields_the_value_or_the_error_code_without_its_namespace() {
        let ok = br#"{"Parameter":{"Name":"/p","Value":"key\nold","Version":1}}"#;
        assert_eq!(parse_answer(200, ok), Ok("key\nold".to_owned()));
        let missing = br#"{"__type":"com.amazonaws.ssm#ParameterNotFound","message":"gone"}"#;
        let err = parse_answer(400, missing).unwrap_err();
        assert_eq!(
            err,
            SsmError::Service {
                code: "ParameterNotFound".into(),
                message: "gone".into()
            }
        );
        assert!(!err.is_transient());
        let throttled = parse_answer(400, br#"{"__type":"ThrottlingException"}"#).unwrap_err();
        assert!(throttled.is_transient());
        let down = parse_answer(503, b"{}").unwrap_err();
        assert!(down.is_transient(), "{down}");
        assert!(matches!(
            parse_answer(502, b"<html>"),
            Err(SsmError::Response(_))
        ));
        assert!(matches!(
            parse_answer(200, b"{}"),
            Err(SsmError::Response(_))
        ));
    }

    #[test]
    fn the_endpoint_is_regional_unless_overridden() {
        let credentials = Credentials::new("a", "b", None, None, "test");
        let target = |region, endpoint| {
            SsmTarget {
                region,
                credentials: &credentials,
                endpoint,
            }
            .url()
        };
        assert_eq!(
            target("eu-west-1", None),
            "https://ssm.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            target("cn-north-1", None),
            "https://ssm.cn-north-1.amazonaws.com.cn/"
        );
        assert_eq!(
            target("us-east-1", Some("http://127.0.0.1:5000/")),
            "http://127.0.0.1:5000/"
        );
    }

    #[test]
    fn a_request_is_signed_for_ssm_in_its_region() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", Some("tok".into()), None, "t");
        let target = SsmTarget {
            region: "eu-west-1",
            credentials: &credentials,
            endpoint: None,
        };
        let request = target.signed_request("{}".into()).unwrap();
        let auth = request.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/ssm/aws4_request"), "{auth}");
        assert!(auth.contains("x-amz-target"), "{auth}");
        assert_eq!(request.headers()["x-amz-security-token"], "tok");
        assert!(request.headers().contains_key("x-amz-date"));
    }
}
