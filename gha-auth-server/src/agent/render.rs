//! Turning a broker answer into file content. The content is secret: it lives in a
//! [`Zeroizing`] buffer and errors name fields, never values.

use gha_auth::broker::{DatabaseCredsResponse, SecretResponse};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::config::{Content, Format};

/// File content (wiped on drop).
pub(crate) type Rendered = Zeroizing<Vec<u8>>;

/// Why a value cannot be written as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The secret has no such field.
    #[error("the secret has no field {0:?}")]
    MissingField(String),
    /// A field name is not a valid variable name for the env format.
    #[error("field {0:?} is not a valid NAME for the env format ([A-Za-z_][A-Za-z0-9_]*)")]
    BadName(String),
    /// A value holds a line break or NUL, which the env format cannot carry.
    #[error("the value of field {0:?} spans lines: use format = \"json\" or field = …")]
    MultiLine(String),
}

/// The fields of a database credential, in file order.
fn database_fields(creds: &DatabaseCredsResponse) -> [(&'static str, &str); 2] {
    [
        ("username", creds.username.as_str()),
        ("password", creds.password.expose()),
    ]
}

/// Renders a secret.
pub(crate) fn secret(answer: &SecretResponse, content: &Content) -> Result<Rendered, RenderError> {
    let fields: Vec<(&str, &str)> = answer.data.iter().map(|(k, v)| (k, v.expose())).collect();
    render(&fields, content)
}

/// Renders database credentials.
pub(crate) fn database(
    creds: &DatabaseCredsResponse,
    content: &Content,
) -> Result<Rendered, RenderError> {
    render(&database_fields(creds), content)
}

fn render(fields: &[(&str, &str)], content: &Content) -> Result<Rendered, RenderError> {
    match content {
        Content::Field(name) => fields
            .iter()
            .find(|(k, _)| *k == name.as_str())
            .map(|(_, v)| Zeroizing::new(v.as_bytes().to_vec()))
            .ok_or_else(|| RenderError::MissingField(name.clone())),
        Content::All(Format::Json) => {
            let object: Map<String, Value> = fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
                .collect();
            let value = Value::Object(object);
            // serde_json cannot fail on a map of strings; the temporary Value is dropped at
            // once (serde_json offers no zeroizing buffer).
            let mut out = Zeroizing::new(serde_json::to_vec_pretty(&value).unwrap_or_default());
            out.push(b'\n');
            Ok(out)
        }
        Content::All(Format::Env) => {
            let mut out = Zeroizing::new(Vec::new());
            for (name, value) in fields {
                if !env_name(name) {
                    return Err(RenderError::BadName((*name).to_owned()));
                }
                if value.contains(['\n', '\r', '\0']) {
                    return Err(RenderError::MultiLine((*name).to_owned()));
                }
                out.extend_from_slice(name.as_bytes());
                out.push(b'=');
                out.extend_from_slice(value.as_bytes());
                out.push(b'\n');
            }
            Ok(out)
        }
    }
}

fn env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use gha_auth::SecretString;
    use gha_auth::broker::{CredentialKind, SecretData};

    use super::*;

    fn answer(pairs: &[(&str, &str)]) -> SecretResponse {
        let data: SecretData = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretString::from(*v)))
            .collect();
        SecretResponse::new("apps/x", 1, data, DateTime::UNIX_EPOCH, 30)
    }

    fn text(rendered: Rendered) -> String {
        String::from_utf8(rendered.to_vec()).unwrap()
    }

    #[test]
    fn fields_json_and_env_render_as_documented() {
        let a = answer(&[("api_key", "k-1"), ("user", "svc")]);
        assert_eq!(
            text(secret(&a, &Content::Field("api_key".into())).unwrap()),
            "k-1"
        );
        let json: Value =
            serde_json::from_str(&text(secret(&a, &Content::All(Format::Json)).unwrap())).unwrap();
        assert_eq!(json, serde_json::json!({"api_key": "k-1", "user": "svc"}));
        assert_eq!(
            text(secret(&a, &Content::All(Format::Env)).unwrap()),
            "api_key=k-1\nuser=svc\n"
        );
        let creds = DatabaseCredsResponse::new(
            "app",
            CredentialKind::Static,
            "app_user",
            SecretString::from("pw-1"),
            DateTime::UNIX_EPOCH,
            DateTime::UNIX_EPOCH,
            DateTime::UNIX_EPOCH,
        );
        assert_eq!(
            text(database(&creds, &Content::All(Format::Env)).unwrap()),
            "username=app_user\npassword=pw-1\n"
        );
        assert_eq!(
            text(database(&creds, &Content::Field("password".into())).unwrap()),
            "pw-1"
        );
    }

    #[test]
    fn values_that_do_not_fit_are_refused_without_repeating_them() {
        let a = answer(&[("key", "line-one\nline-two-secret")]);
        let error = secret(&a, &Content::All(Format::Env)).unwrap_err();
        assert_eq!(error, RenderError::MultiLine("key".into()));
        assert!(!error.to_string().contains("line-two-secret"));
        let a = answer(&[("bad-name", "v")]);
        assert_eq!(
            secret(&a, &Content::All(Format::Env)).unwrap_err(),
            RenderError::BadName("bad-name".into())
        );
        assert_eq!(
            secret(&a, &Content::Field("absent".into())).unwrap_err(),
            RenderError::MissingField("absent".into())
        );
        // The JSON format carries any value.
        let a = answer(&[("key", "line-one\nline-two")]);
        assert!(secret(&a, &Content::All(Format::Json)).is_ok());
    }
}
