//! AWS ECR login without a stored password: credentials from the standard chain (environment variables, a
//! web identity token file as IRSA and EKS Pod Identity give, the instance metadata service v2), then
//! `ecr:GetAuthorizationToken` signed with SigV4, the token cached until shortly before it expires.
//!
//! Endpoints follow the AWS SDKs' environment variables, so that tests (and private endpoints) can point them
//! elsewhere: `AWS_EC2_METADATA_SERVICE_ENDPOINT`, `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL_ECR`.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use regex::Regex;

use super::sigv4::{self, AwsCredentials};
use super::{CloudError, Env};
use crate::registry::Credentials;

fn err(step: &'static str, message: impl Into<String>) -> CloudError {
    CloudError {
        provider: "aws",
        step,
        message: message.into(),
    }
}

static ECR_HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|sc2s\.sgov\.gov|c2s\.ic\.gov)(?::[0-9]+)?$",
    )
    .expect("a valid pattern")
});

/// The account and region of an ECR registry host (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`, FIPS and
/// China variants), or None for another host.
pub fn ecr_registry(host: &str) -> Option<(String, String)> {
    let c = ECR_HOST.captures(host)?;
    Some((c[1].to_string(), c[2].to_string()))
}

fn xml_field<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

/// Credentials from the chain: environment, web identity, instance metadata.
pub async fn credentials(http: &reqwest::Client, env: &Env) -> Result<AwsCredentials, CloudError> {
    if let (Some(id), Some(secret)) = (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        return Ok(AwsCredentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: env.get("AWS_SESSION_TOKEN").map(str::to_string),
        });
    }
    if let (Some(file), Some(role)) = (
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
        env.get("AWS_ROLE_ARN"),
    ) {
        return web_identity(http, env, file, role).await;
    }
    instance_metadata(http, env).await
}

async fn web_identity(
    http: &reqwest::Client,
    env: &Env,
    file: &str,
    role: &str,
) -> Result<AwsCredentials, CloudError> {
    const STEP: &str = "web identity (STS AssumeRoleWithWebIdentity)";
    let token = std::fs::read_to_string(file)
        .map_err(|e| err(STEP, format!("cannot read the token file {file}: {e}")))?;
    let region = env
        .get("AWS_REGION")
        .or(env.get("AWS_DEFAULT_REGION"))
        .unwrap_or("us-east-1");
    let endpoint = env
        .get("AWS_ENDPOINT_URL_STS")
        .map(str::to_string)
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
    let session = env.get("AWS_ROLE_SESSION_NAME").unwrap_or("tagpilot");
    let resp = http
        .post(format!("{}/", endpoint.trim_end_matches('/')))
        .form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role),
            ("RoleSessionName", session),
            ("WebIdentityToken", token.trim()),
        ])
        .send()
        .await
        .map_err(|e| err(STEP, e.to_string()))?;
    let status = resp.status();
    let body = super::read_capped(resp).await.map_err(|e| err(STEP, e))?;
    let body = String::from_utf8_lossy(&body);
    if !status.is_success() {
        let why = xml_field(&body, "Message").unwrap_or(status.as_str());
        return Err(err(STEP, format!("{endpoint} answered {status}: {why}")));
    }
    sts_credentials(&body)
}

/// The credentials of an STS AssumeRoleWithWebIdentity answer (XML).
pub fn sts_credentials(body: &str) -> Result<AwsCredentials, CloudError> {
    const STEP: &str = "STS AssumeRoleWithWebIdentity";
    match (
        xml_field(body, "AccessKeyId"),
        xml_field(body, "SecretAccessKey"),
        xml_field(body, "SessionToken"),
    ) {
        (Some(id), Some(secret), token) => Ok(AwsCredentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: token.map(str::to_string),
        }),
        _ => Err(err(STEP, "the answer holds no credentials")),
    }
}

async fn instance_metadata(
    http: &reqwest::Client,
    env: &Env,
) -> Result<AwsCredentials, CloudError> {
    const STEP: &str = "instance metadata (IMDSv2)";
    let base = env
        .get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or("http://169.254.169.254")
        .trim_end_matches('/')
        .to_string();
    let fail = |e: String| err(STEP, format!("{base}: {e}"));
    // The body of a successful answer (at most 1 MiB).
    async fn text(req: reqwest::RequestBuilder) -> Result<String, String> {
        let resp = req
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        let body = super::read_capped(resp).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
    let token = text(
        http.put(format!("{base}/latest/api/token"))
            .header("X-aws-ec2-metadata-token-ttl-seconds", "21600"),
    )
    .await
    .map_err(fail)?;
    let get = |path: String| {
        text(
            http.get(format!("{base}{path}"))
                .header("X-aws-ec2-metadata-token", token.clone()),
        )
    };
    let roles = get("/latest/meta-data/iam/security-credentials/".into())
        .await
        .map_err(fail)?;
    let role = roles
        .lines()
        .next()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| err(STEP, "no IAM role is attached to the instance"))?;
    let answer = get(format!("/latest/meta-data/iam/security-credentials/{role}"))
        .await
        .map_err(fail)?;
    let creds: serde_json::Value = serde_json::from_str(&answer)
        .map_err(|e| err(STEP, format!("role {role}: the answer is not JSON: {e}")))?;
    match (
        creds["AccessKeyId"].as_str(),
        creds["SecretAccessKey"].as_str(),
    ) {
        (Some(id), Some(secret)) => Ok(AwsCredentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: creds["Token"].as_str().map(str::to_string),
        }),
        _ => Err(err(
            STEP,
            format!("role {role}: the answer holds no credentials"),
        )),
    }
}

/// `ecr:GetAuthorizationToken` in `region`: registry credentials and when they expire.
pub async fn authorization_token(
    http: &reqwest::Client,
    env: &Env,
    creds: &AwsCredentials,
    region: &str,
) -> Result<(Credentials, Duration), CloudError> {
    const STEP: &str = "ECR GetAuthorizationToken";
    let endpoint = env
        .get("AWS_ENDPOINT_URL_ECR")
        .map(str::to_string)
        .unwrap_or_else(|| format!("https://api.ecr.{region}.amazonaws.com"));
    let url: reqwest::Url = endpoint
        .parse()
        .map_err(|e| err(STEP, format!("endpoint {endpoint:?}: {e}")))?;
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let body = b"{}";
    let amz_date = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let target = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
    let content_type = "application/x-amz-json-1.1";
    let mut headers = vec![("content-type", content_type), ("x-amz-target", target)];
    if let Some(t) = &creds.session_token {
        headers.push(("x-amz-security-token", t.as_str()));
    }
    let auth = sigv4::authorization(
        creds,
        &sigv4::Request {
            method: "POST",
            host: &host,
            path: "/",
            query: &[],
            headers: &headers,
            body,
        },
        &amz_date,
        region,
        "ecr",
    );
    let mut req = http
        .post(url)
        .header("content-type", content_type)
        .header("x-amz-target", target)
        .header("x-amz-date", &amz_date)
        .header("authorization", auth)
        .body(body.to_vec());
    if let Some(t) = &creds.session_token {
        req = req.header("x-amz-security-token", t);
    }
    let resp = req.send().await.map_err(|e| err(STEP, e.to_string()))?;
    let status = resp.status();
    let answer: serde_json::Value =
        serde_json::from_slice(&super::read_capped(resp).await.map_err(|e| err(STEP, e))?)
            .unwrap_or_default();
    if !status.is_success() {
        let why = answer["message"]
            .as_str()
            .or(answer["Message"].as_str())
            .unwrap_or(status.as_str());
        return Err(err(STEP, format!("{endpoint} answered {status}: {why}")));
    }
    ecr_credentials(&answer, jiff::Timestamp::now().as_second() as f64)
}

/// The registry credentials of a GetAuthorizationToken answer, and how long they last from `now` (seconds
/// since the epoch); at most 12 hours, whatever the answer says.
pub fn ecr_credentials(
    answer: &serde_json::Value,
    now: f64,
) -> Result<(Credentials, Duration), CloudError> {
    const STEP: &str = "ECR GetAuthorizationToken";
    let data = &answer["authorizationData"][0];
    let token = data["authorizationToken"]
        .as_str()
        .ok_or_else(|| err(STEP, "the answer holds no authorizationToken"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| err(STEP, "the authorizationToken is not base64 text"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| err(STEP, "the authorizationToken is not user:password"))?;
    // Clamped: a huge, infinite or NaN expiry made Duration::from_secs_f64 panic.
    let expires_in = data["expiresAt"]
        .as_f64()
        .map(|at| at - now)
        .filter(|s| s.is_finite())
        .unwrap_or(12.0 * 3600.0)
        .clamp(0.0, 12.0 * 3600.0);
    Ok((
        Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        },
        Duration::from_secs_f64(expires_in),
    ))
}

/// Logs in to the ECR registry `host`: the credential chain, then GetAuthorizationToken.
pub async fn login(
    http: &reqwest::Client,
    env: &Env,
    host: &str,
) -> Result<(Credentials, Duration), CloudError> {
    let Some((_, region)) = ecr_registry(host) else {
        return Err(err(
            "registry host",
            format!("{host:?} is not an ECR registry (<account>.dkr.ecr.<region>.amazonaws.com)"),
        ));
    };
    let creds = credentials(http, env).await?;
    authorization_token(http, env, &creds, &region).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts() {
        assert_eq!(
            ecr_registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(("123456789012".into(), "eu-west-1".into()))
        );
        assert_eq!(
            ecr_registry("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").map(|r| r.1),
            Some("us-gov-west-1".into())
        );
        assert!(ecr_registry("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn").is_some());
        assert!(ecr_registry("123456789012.dkr.ecr.us-east-1.amazonaws.com:5000").is_some());
        assert!(ecr_registry("ghcr.io").is_none());
        assert!(ecr_registry("12345.dkr.ecr.us-east-1.amazonaws.com").is_none());
        assert!(ecr_registry("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io").is_none());
    }

    #[test]
    fn sts_answers_are_read() {
        let xml = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
                   <AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>\
                   </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
        assert_eq!(xml_field(xml, "AccessKeyId"), Some("ASIA1"));
        assert_eq!(xml_field(xml, "SessionToken"), Some("t"));
        assert_eq!(xml_field(xml, "Nope"), None);
    }

    #[tokio::test]
    async fn environment_credentials_come_first() {
        let env = Env::of(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1"),
        ]);
        let c = credentials(&reqwest::Client::new(), &env).await.unwrap();
        assert_eq!(c.access_key_id, "AKID");
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[tokio::test]
    async fn no_metadata_service_is_a_clear_error() {
        let env = Env::of(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")]);
        let e = credentials(&reqwest::Client::new(), &env)
            .await
            .unwrap_err();
        assert_eq!(e.step, "instance metadata (IMDSv2)");
        assert!(
            e.to_string()
                .starts_with("aws: instance metadata (IMDSv2): http://127.0.0.1:1"),
            "{e}"
        );
    }
}
