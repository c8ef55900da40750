//! Epicor REST API v2 JSON shapes used by the client, and their parsers. Answers are untrusted
//! input (a `fuzz/` target runs these parsers); unknown fields are ignored, as Epicor adds
//! columns between releases.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Input of `Ice.BO.UserCodesSvc/GetByID`.
#[derive(Debug, Serialize)]
pub(crate) struct GetByIdInput<'a> {
    /// The User Code type to read, with all its codes.
    #[serde(rename = "codeTypeID")]
    pub(crate) code_type_id: &'a str,
}

/// Output of `GetByID`: `{"returnObj": <UserCodesTableset>}`.
#[derive(Debug, Deserialize)]
pub(crate) struct GetByIdOutput {
    /// The tableset.
    #[serde(rename = "returnObj")]
    pub(crate) return_obj: UserCodesTableset,
}

/// `Ice.Tablesets.UserCodesTableset`: the code type row and its codes.
#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct UserCodesTableset {
    /// `UDCodeType` rows (one for GetByID).
    #[serde(rename = "UDCodeType", default)]
    pub(crate) code_types: Vec<UdCodeTypeRow>,
    /// `UDCodes` rows of that type.
    #[serde(rename = "UDCodes", default)]
    pub(crate) codes: Vec<UdCodesRow>,
}

/// `Ice.Tablesets.UDCodeTypeRow` (the columns the client reads).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(crate) struct UdCodeTypeRow {
    /// Company id.
    #[serde(rename = "Company", default)]
    pub(crate) company: String,
    /// User Code type id.
    #[serde(rename = "CodeTypeID", default)]
    pub(crate) code_type_id: String,
    /// Description of the type.
    #[serde(rename = "CodeTypeDesc", default)]
    pub(crate) code_type_desc: String,
}

/// `Ice.Tablesets.UDCodesRow`. `Debug` hides the descriptions: one of them holds the key.
#[derive(Clone, Default, Deserialize, Serialize)]
pub(crate) struct UdCodesRow {
    /// Company id.
    #[serde(rename = "Company", default)]
    pub(crate) company: String,
    /// User Code type id.
    #[serde(rename = "CodeTypeID", default)]
    pub(crate) code_type_id: String,
    /// User Code id.
    #[serde(rename = "CodeID", default)]
    pub(crate) code_id: String,
    /// Active flag.
    #[serde(rename = "IsActive", default)]
    pub(crate) is_active: bool,
    /// Short description.
    #[serde(rename = "CodeDesc", default, deserialize_with = "null_string")]
    pub(crate) code_desc: String,
    /// Long description.
    #[serde(rename = "LongDesc", default, deserialize_with = "null_string")]
    pub(crate) long_desc: String,
    /// Row revision, incremented at each write.
    #[serde(rename = "SysRevID", default)]
    pub(crate) sys_rev_id: i64,
    /// `""`, `"A"` (add), `"U"` (update), `"D"` (delete).
    #[serde(rename = "RowMod", default)]
    pub(crate) row_mod: String,
}

impl std::fmt::Debug for UdCodesRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdCodesRow")
            .field("company", &self.company)
            .field("code_type_id", &self.code_type_id)
            .field("code_id", &self.code_id)
            .field("is_active", &self.is_active)
            .field("sys_rev_id", &self.sys_rev_id)
            .field("row_mod", &self.row_mod)
            .finish_non_exhaustive()
    }
}

fn null_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Output of `UpdateExt`: `{"returnObj":{"BOUpdError":[…]},"parameters":{"errorsOccurred":…}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct UpdateExtOutput {
    /// The errors table.
    #[serde(rename = "returnObj", default)]
    pub(crate) return_obj: BoUpdErrorTableset,
    /// Output parameters.
    #[serde(default)]
    pub(crate) parameters: UpdateExtParameters,
}

/// `Ice.BOUpdErrorTableset`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BoUpdErrorTableset {
    /// One row per failed row.
    #[serde(rename = "BOUpdError", default)]
    pub(crate) errors: Vec<BoUpdErrorRow>,
}

/// `Ice.BOUpdErrorRow` (the columns the client reads).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BoUpdErrorRow {
    /// Table of the failed row.
    #[serde(rename = "TableName", default)]
    pub(crate) table_name: String,
    /// Why.
    #[serde(rename = "ErrorText", default)]
    pub(crate) error_text: String,
}

/// `UpdateExt` output parameters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct UpdateExtParameters {
    /// Whether any row failed.
    #[serde(rename = "errorsOccurred", default)]
    pub(crate) errors_occurred: bool,
}

/// The error body Epicor's REST service answers with on 4xx/5xx:
/// `{"HttpStatus":400,"ReasonPhrase":"REST API Exception","ErrorMessage":"…",
///   "ErrorType":"Ice.BLException","ErrorDetails":[{"Message":"…","Type":"Error",…}],
///   "CorrelationId":"…"}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub(crate) struct ErrorBody {
    /// The HTTP status, repeated.
    #[serde(rename = "HttpStatus", default)]
    pub(crate) http_status: u16,
    /// `"REST API Exception"`, `"Unauthorized"`, …
    #[serde(rename = "ReasonPhrase", default)]
    pub(crate) reason_phrase: String,
    /// The message.
    #[serde(rename = "ErrorMessage", default)]
    pub(crate) error_message: String,
    /// The .NET exception type.
    #[serde(rename = "ErrorType", default)]
    pub(crate) error_type: String,
    /// Details per row or table.
    #[serde(rename = "ErrorDetails", default)]
    pub(crate) error_details: Vec<ErrorDetail>,
    /// Correlation id for Epicor's server log.
    #[serde(rename = "CorrelationId", default)]
    pub(crate) correlation_id: String,
}

/// One entry of [`ErrorBody::error_details`].
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub(crate) struct ErrorDetail {
    /// The message.
    #[serde(rename = "Message", default)]
    pub(crate) message: String,
    /// `Error`, `Warning`, …
    #[serde(rename = "Type", default)]
    pub(crate) kind: String,
    /// The table concerned, if any.
    #[serde(rename = "Table", default, skip_serializing_if = "String::is_empty")]
    pub(crate) table: String,
}

/// Answer of the token endpoint (`POST /TokenResource.svc/`).
#[derive(Deserialize)]
pub(crate) struct TokenOutput {
    /// The bearer token.
    #[serde(rename = "AccessToken", alias = "access_token")]
    pub(crate) access_token: gha_auth::SecretString,
    /// Lifetime in seconds.
    #[serde(rename = "ExpiresIn", alias = "expires_in", default)]
    pub(crate) expires_in: Option<i64>,
    /// `Bearer`.
    #[serde(rename = "TokenType", alias = "token_type", default)]
    pub(crate) token_type: Option<String>,
}

impl std::fmt::Debug for TokenOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenOutput")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("token_type", &self.token_type)
            .finish()
    }
}

/// Parses a `GetByID` answer.
pub(crate) fn parse_get_by_id(body: &[u8]) -> Result<UserCodesTableset, String> {
    serde_json::from_slice::<GetByIdOutput>(body)
        .map(|out| out.return_obj)
        .map_err(|e| {
            format!(
                "GetByID answer is not a UserCodes tableset: {}",
                category(&e)
            )
        })
}

/// Parses an `UpdateExt` answer; an answer reporting row errors is an error, with the rows'
/// texts.
pub(crate) fn parse_update_ext(body: &[u8]) -> Result<(), UpdateRefused> {
    // Some versions answer 200 with an empty body when there is nothing to report.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let out: UpdateExtOutput = serde_json::from_slice(body).map_err(|e| {
        UpdateRefused::Malformed(format!(
            "UpdateExt answer is not an UpdateExt output: {}",
            category(&e)
        ))
    })?;
    if out.parameters.errors_occurred || !out.return_obj.errors.is_empty() {
        let texts: Vec<String> = out
            .return_obj
            .errors
            .iter()
            .map(|row| format!("{}: {}", row.table_name, row.error_text))
            .collect();
        return Err(UpdateRefused::RowErrors(if texts.is_empty() {
            "errorsOccurred without details".to_owned()
        } else {
            texts.join("; ")
        }));
    }
    Ok(())
}

/// Why an `UpdateExt` answer is not a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UpdateRefused {
    /// Not the documented shape.
    Malformed(String),
    /// Epicor refused rows (`BOUpdError`).
    RowErrors(String),
}

/// Parses a token endpoint answer.
pub(crate) fn parse_token(body: &[u8]) -> Result<TokenOutput, String> {
    let token: TokenOutput = serde_json::from_slice(body)
        .map_err(|e| format!("token answer is not a token: {}", category(&e)))?;
    if token.access_token.is_empty() {
        return Err("token answer has an empty AccessToken".into());
    }
    if let Some(kind) = &token.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(format!("token type {kind:?} is not Bearer"));
    }
    Ok(token)
}

/// The message of an Epicor error body (`ErrorMessage`, else the first detail, else the
/// reason), or `None` when the body is not one.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let error: ErrorBody = serde_json::from_slice(body).ok()?;
    let message = [
        error.error_message.as_str(),
        error
            .error_details
            .first()
            .map_or("", |d| d.message.as_str()),
        error.reason_phrase.as_str(),
    ]
    .into_iter()
    .find(|m| !m.is_empty())?
    .to_owned();
    Some(message)
}

/// `serde_json` error messages can quote input (strings in "invalid type" errors); keep only
/// the category and position.
fn category(error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Eof => "truncated",
    };
    format!("{kind} at line {} column {}", error.line(), error.column())
}

/// Builds the `UpdateExt` input that writes `value` into `column` of one User Code:
/// `{"ds":{"UDCodeType":[],"UDCodes":[{"Company":…,"CodeTypeID":…,"CodeID":…,"<column>":…,
/// "RowMod":"U"|"A"}]},"continueProcessingOnError":false,"rollbackParentOnChildError":true}`.
pub(crate) fn update_ext_input(
    company: &str,
    code_type_id: &str,
    code_id: &str,
    column: &str,
    value: &str,
    add: bool,
) -> Value {
    let mut row = Map::new();
    row.insert("Company".into(), Value::from(company));
    row.insert("CodeTypeID".into(), Value::from(code_type_id));
    row.insert("CodeID".into(), Value::from(code_id));
    if add {
        // A new code must be active for the directive's lookup to see it.
        row.insert("IsActive".into(), Value::Bool(true));
    }
    row.insert(column.into(), Value::from(value));
    row.insert("RowMod".into(), Value::from(if add { "A" } else { "U" }));
    serde_json::json!({
        "ds": { "UDCodeType": [], "UDCodes": [Value::Object(row)] },
        "continueProcessingOnError": false,
        "rollbackParentOnChildError": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_by_id_answer_parses_and_tolerates_extra_columns() {
        let body = br#"{"returnObj":{"UDCodeType":[{"Company":"GHA01","CodeTypeID":"GHA",
            "CodeTypeDesc":"gha-auth","SysRowID":"x"}],"UDCodes":[{"Company":"GHA01",
            "CodeTypeID":"GHA","CodeID":"LINKKEY","IsActive":true,"CodeDesc":"Link key",
            "LongDesc":"ghal_abc","SysRevID":7,"RowMod":"","GlobalUDCodes":false}],
            "ExtensionTables":[]}}"#;
        let set = parse_get_by_id(body).unwrap();
        assert_eq!(set.codes.len(), 1);
        assert_eq!(set.codes[0].long_desc, "ghal_abc");
        assert_eq!(set.codes[0].sys_rev_id, 7);
        assert!(!format!("{:?}", set.codes[0]).contains("ghal_abc"));
    }

    #[test]
    fn parse_errors_do_not_quote_input() {
        let error = parse_get_by_id(br#"{"returnObj":{"UDCodes":[{"LongDesc":42}]}}"#).unwrap_err();
        assert!(error.contains("unexpected shape"), "{error}");
        let error = parse_get_by_id(br#"{"returnObj":"ghal_secretvalue"}"#).unwrap_err();
        assert!(!error.contains("ghal_secretvalue"), "{error}");
    }

    #[test]
    fn update_ext_reports_row_errors() {
        assert_eq!(
            parse_update_ext(
                br#"{"returnObj":{"BOUpdError":[]},"parameters":{"errorsOccurred":false}}"#
            ),
            Ok(())
        );
        assert_eq!(parse_update_ext(b""), Ok(()));
        let refused = parse_update_ext(
            br#"{"returnObj":{"BOUpdError":[{"TableName":"UDCodes","ErrorLevel":"Error",
            "ErrorText":"Record not found."}]},"parameters":{"errorsOccurred":true}}"#,
        );
        assert_eq!(
            refused,
            Err(UpdateRefused::RowErrors(
                "UDCodes: Record not found.".into()
            ))
        );
        assert!(matches!(
            parse_update_ext(b"<html>"),
            Err(UpdateRefused::Malformed(_))
        ));
    }

    #[test]
    fn error_bodies_and_tokens_parse() {
        let body = br#"{"HttpStatus":401,"ReasonPhrase":"REST API Exception",
            "ErrorMessage":"Invalid API key","ErrorType":"Epicor.RESTApi.ApiKeyException",
            "ErrorDetails":[],"CorrelationId":"c1"}"#;
        assert_eq!(error_message(body).as_deref(), Some("Invalid API key"));
        assert_eq!(error_message(b"Service Unavailable"), None);

        let token =
            parse_token(br#"{"AccessToken":"tok","ExpiresIn":3600,"TokenType":"Bearer"}"#).unwrap();
        assert_eq!(token.access_token.expose(), "tok");
        assert_eq!(token.expires_in, Some(3600));
        assert!(!format!("{token:?}").contains("tok\""));
        assert!(parse_token(br#"{"AccessToken":""}"#).is_err());
        assert!(parse_token(br#"{"AccessToken":"t","TokenType":"MAC"}"#).is_err());
    }

    #[test]
    fn update_input_has_the_documented_shape() {
        let input = update_ext_input("GHA01", "GHA", "LINKKEY", "LongDesc", "ghal_x", false);
        assert_eq!(
            input,
            serde_json::json!({
                "ds": {"UDCodeType": [], "UDCodes": [{"Company": "GHA01", "CodeTypeID": "GHA",
                    "CodeID": "LINKKEY", "LongDesc": "ghal_x", "RowMod": "U"}]},
                "continueProcessingOnError": false,
                "rollbackParentOnChildError": true,
            })
        );
        let add = update_ext_input("GHA01", "GHA", "LINKKEY", "CodeDesc", "ghal_x", true);
        assert_eq!(add["ds"]["UDCodes"][0]["RowMod"], "A");
        assert_eq!(add["ds"]["UDCodes"][0]["IsActive"], true);
    }
}
