//! The Epicor target: the User Code an Epicor data directive reads the link key from, kept over
//! Epicor Kinetic's REST API v2.
//!
//! The directive (custom code in a data or method directive) reads `Ice.UDCodes` for the
//! configured company, `CodeTypeID` and `CodeID` (default `GHA` / `LINKKEY`) and sends the
//! column's value (default `LongDesc`) as `x-api-key` to the field-service API. Installing a key
//! is updating that column; testing it is reading it back.
//!
//! # The calls this client makes
//!
//! Every call carries, besides the headers shown:
//! - `x-api-key: <Epicor API key>` (REST v2 refuses any call without one, even with valid user
//!   authentication);
//! - `Authorization: Basic base64(user:password)` (`auth = "basic"`), or
//!   `Authorization: Bearer <token>` (`auth = "token"`, the token from the call below);
//! - `Accept: application/json`.
//!
//! The user, password and API key are read from Vault KV v2 (or a 0600 file) at each call.
//! Timeouts and 5xx answers are retried with doubling backoff (`max_attempts`,
//! `retry_backoff`); 4xx answers never are. A 401 in token mode gets one more try with a new
//! token. Non-2xx answers are expected in Epicor's error shape,
//! `{"HttpStatus":…,"ReasonPhrase":…,"ErrorMessage":…,"ErrorType":…,"ErrorDetails":[…],
//! "CorrelationId":…}`; its `ErrorMessage` goes into the error, with any secret removed.
//!
//! 1. **Token** (only with `auth = "token"`; cached until 60 s before it expires):
//!    `POST {base_url}/TokenResource.svc/`, empty body, `Authorization: Basic …`.
//!    The answer must be `200` with `{"AccessToken":"…","ExpiresIn":<seconds>,"TokenType":"Bearer"}`
//!    (`ExpiresIn` optional: one hour is assumed).
//! 2. **Read** (`GetByID`): `POST {base_url}/api/v2/odata/{company}/Ice.BO.UserCodesSvc/GetByID`,
//!    `Content-Type: application/json`, body `{"codeTypeID":"GHA"}`. The answer must be `200`
//!    with the `UserCodesTableset` of that type,
//!    `{"returnObj":{"UDCodeType":[{…}],"UDCodes":[{"Company":…,"CodeTypeID":"GHA",
//!    "CodeID":"LINKKEY","IsActive":true,"CodeDesc":…,"LongDesc":…,"SysRevID":…,"RowMod":""},…]}}`;
//!    the key is the configured column of the row whose `CodeID` matches. An unknown code type
//!    is an Epicor error answer (4xx).
//! 3. **Write** (`UpdateExt`):
//!    `POST {base_url}/api/v2/odata/{company}/Ice.BO.UserCodesSvc/UpdateExt`, body
//!    `{"ds":{"UDCodeType":[],"UDCodes":[{"Company":…,"CodeTypeID":"GHA","CodeID":"LINKKEY",
//!    "LongDesc":"ghal_…","RowMod":"U"}]},"continueProcessingOnError":false,
//!    "rollbackParentOnChildError":true}` (`RowMod":"A"` and `"IsActive":true` when the code
//!    does not exist yet). The answer must be `200` with
//!    `{"returnObj":{"BOUpdError":[]},"parameters":{"ds":{…},"errorsOccurred":false}}`; rows in
//!    `BOUpdError` or `errorsOccurred: true` are a rejection.
//!
//! `install` reads first and writes only when the column differs, so repeating it is free and
//! leaves Epicor's row revision alone.

mod client;
#[cfg(test)]
mod tests;
pub(crate) mod wire;

use std::fmt;

use futures_util::future::BoxFuture;
use gha_auth::SecretString;
use gha_auth::secret::constant_time_eq;

pub(crate) use client::EpicorClient;

use super::{LinkKeyTarget, TargetError, UserCodeField};

/// A link key kept in an Epicor User Code.
pub(crate) struct EpicorTarget {
    client: EpicorClient,
    company: String,
    code_type_id: String,
    code_id: String,
    field: UserCodeField,
}

impl fmt::Debug for EpicorTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpicorTarget")
            .field("client", &self.client)
            .field("code_type_id", &self.code_type_id)
            .field("code_id", &self.code_id)
            .field("field", &self.field)
            .finish()
    }
}

impl EpicorTarget {
    pub(crate) fn new(
        client: EpicorClient,
        company: String,
        code_type_id: String,
        code_id: String,
        field: UserCodeField,
    ) -> Self {
        Self {
            client,
            company,
            code_type_id,
            code_id,
            field,
        }
    }

    /// The row of our code, if it exists, and its key column.
    async fn current(&self) -> Result<Option<SecretString>, TargetError> {
        let set = self.client.get_user_codes(&self.code_type_id).await?;
        let row = set.codes.into_iter().find(|row| {
            row.code_id.eq_ignore_ascii_case(&self.code_id)
                && row.code_type_id.eq_ignore_ascii_case(&self.code_type_id)
        });
        Ok(row.map(|row| {
            SecretString::new(match self.field {
                UserCodeField::LongDesc => row.long_desc,
                UserCodeField::CodeDesc => row.code_desc,
            })
        }))
    }
}

impl LinkKeyTarget for EpicorTarget {
    fn install<'a>(&'a self, key: &'a SecretString) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            let current = self.current().await?;
            if let Some(value) = &current
                && constant_time_eq(value.expose().as_bytes(), key.expose().as_bytes())
            {
                return Ok(());
            }
            self.client
                .update_user_code(
                    &self.code_type_id,
                    &self.code_id,
                    self.field.column(),
                    key,
                    current.is_none(),
                )
                .await
        })
    }

    fn read_back(&self) -> BoxFuture<'_, Result<SecretString, TargetError>> {
        Box::pin(async move {
            self.current().await?.ok_or_else(|| {
                TargetError::Protocol(format!(
                    "User Code {}/{} does not exist in company {}",
                    self.code_type_id, self.code_id, self.company
                ))
            })
        })
    }

    fn describe(&self) -> String {
        format!(
            "epicor {} company {} UserCodes {}/{}.{}",
            self.client.base(),
            self.company,
            self.code_type_id,
            self.code_id,
            self.field.column()
        )
    }
}
