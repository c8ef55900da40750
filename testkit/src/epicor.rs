//! A **fake** Epicor Kinetic server, the only fake in the test suite (no Epicor is reachable
//! from here), plus the data directive that sends the key Epicor holds to the field-service API.
//!
//! [`FakeEpicor::start`] serves, on 127.0.0.1 and a free port, under the instance path
//! `/EpicorERP` (so `base_url` is `http://127.0.0.1:<port>/EpicorERP`), exactly the REST API v2
//! calls gha-auth's Epicor client makes:
//!
//! | call | what the fake does |
//! |---|---|
//! | `POST /EpicorERP/TokenResource.svc/` | Basic auth → `{"AccessToken","ExpiresIn","TokenType":"Bearer"}` |
//! | `POST /EpicorERP/api/v2/odata/{Company}/Ice.BO.UserCodesSvc/GetByID` | `{"codeTypeID"}` → `{"returnObj":{"UDCodeType":[…],"UDCodes":[…]}}` |
//! | `POST /EpicorERP/api/v2/odata/{Company}/Ice.BO.UserCodesSvc/UpdateExt` | `{"ds":{"UDCodes":[…RowMod "U"/"A"…]},…}` → `{"returnObj":{"BOUpdError":[…]},"parameters":{"ds":…,"errorsOccurred":…}}` |
//!
//! What it is faithful to (from the research notes on REST v2 and the service's published
//! schema): the URL layout (`/api/v2/odata/{Company}/{Service}/{Method}`), the `x-api-key`
//! header required on every service call (401 without a valid one, even with valid user
//! authentication), user authentication by HTTP Basic or by a bearer token from
//! `TokenResource.svc` (tokens expire), the company path segment (an unknown company is refused),
//! the JSON shapes of `GetByID` and `UpdateExt` input and output (tablesets `UDCodeType` /
//! `UDCodes`, `RowMod`, `SysRevID` incremented on each write, `BOUpdError` rows and
//! `errorsOccurred`), and the error body of the REST service
//! (`{"HttpStatus","ReasonPhrase","ErrorMessage","ErrorType","ErrorDetails","CorrelationId"}`).
//! What it is not: OData queries, other services, BPM/field security, the exact text of
//! Epicor's messages, the status codes of rarer errors (an unknown record is a 404 here).
//!
//! Failure modes tests can switch on ([`FakeEpicor::set_mode`]): down (every call 503 with a
//! plain body, as IIS answers when the app pool is stopped), rejecting updates (a 400
//! BLException, as a method directive raising an exception does), row errors (200 with
//! `BOUpdError`), swallowing updates (success without storing, for read-back mismatches), and
//! slowness (each answer delayed). [`FakeEpicor::fail_next`] makes the next N calls 503.
//!
//! The **data directive** ([`FakeEpicor::start_data_directive`]) behaves like the customer's
//! directive: in a loop it reads the User Code (`GHA`/`LINKKEY`, `LongDesc` by default) from the
//! fake's own table — what Epicor holds *now* — and posts a job update to the field-service API
//! (`POST {url}/epicor/job-updates`) with that value in `x-api-key`, counting accepted and
//! rejected calls.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::util::random_hex;

/// The instance path segment of the fake's base URL.
pub const EPICOR_INSTANCE: &str = "EpicorERP";

/// A failure mode of the fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EpicorMode {
    /// Answers normally.
    #[default]
    Normal,
    /// Every call: `503 Service Unavailable`, plain-text body.
    Down,
    /// `UpdateExt`: `400` with an Epicor error body (a directive refusing the change).
    RejectUpdates,
    /// `UpdateExt`: `200` with a `BOUpdError` row and `errorsOccurred: true`.
    RowErrors,
    /// `UpdateExt`: `200` success, but nothing is stored (read back shows the old value).
    SwallowUpdates,
}

/// How the fake is set up.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FakeEpicorConfig {
    /// The company (path segment and `Company` column).
    pub company: String,
    /// The integration user.
    pub username: String,
    /// Its password.
    pub password: String,
    /// The API key Epicor issued to the integration.
    pub api_key: String,
    /// Lifetime of tokens from `TokenResource.svc`.
    pub token_lifetime: Duration,
    /// The User Code type that exists (with no codes) at start.
    pub code_type_id: String,
}

impl Default for FakeEpicorConfig {
    fn default() -> Self {
        Self {
            company: "GHA01".into(),
            username: "gha-rotation".into(),
            password: format!("pw-{}", random_hex(12).unwrap_or_default()),
            api_key: format!("epicor-{}", random_hex(16).unwrap_or_default()),
            token_lifetime: Duration::from_secs(3600),
            code_type_id: "GHA".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct CodeRow {
    is_active: bool,
    code_desc: String,
    long_desc: String,
    sys_rev_id: i64,
    sys_row_id: String,
}

#[derive(Debug, Default)]
struct Tables {
    /// Code types that exist.
    types: BTreeMap<String, String>,
    /// (CodeTypeID, CodeID) → row.
    codes: BTreeMap<(String, String), CodeRow>,
    tokens: HashMap<String, Instant>,
}

#[derive(Debug)]
struct Inner {
    config: FakeEpicorConfig,
    tables: Mutex<Tables>,
    mode: Mutex<EpicorMode>,
    delay: Mutex<Duration>,
    fail_next: AtomicU64,
    calls: Mutex<BTreeMap<String, u64>>,
    refused_auth: AtomicU64,
}

impl Inner {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mode(&self) -> EpicorMode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake Epicor. Stops when dropped.
#[derive(Debug)]
pub struct FakeEpicor {
    inner: Arc<Inner>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for FakeEpicor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeEpicor {
    /// Starts the fake with `config` on a free port.
    pub async fn start(config: FakeEpicorConfig) -> Result<Self> {
        let mut tables = Tables::default();
        tables
            .types
            .insert(config.code_type_id.clone(), "gha-auth link keys".into());
        let inner = Arc::new(Inner {
            config,
            tables: Mutex::new(tables),
            mode: Mutex::new(EpicorMode::Normal),
            delay: Mutex::new(Duration::ZERO),
            fail_next: AtomicU64::new(0),
            calls: Mutex::new(BTreeMap::new()),
            refused_auth: AtomicU64::new(0),
        });
        let router = Router::new()
            .route(
                &format!("/{EPICOR_INSTANCE}/TokenResource.svc/"),
                post(token),
            )
            .route(
                &format!("/{EPICOR_INSTANCE}/api/v2/odata/{{company}}/{{service}}/{{method}}"),
                post(service_call),
            )
            .fallback(not_found)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fake Epicor")?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { inner, addr, task })
    }

    /// The `base_url` to configure: `http://127.0.0.1:<port>/EpicorERP`.
    pub fn base_url(&self) -> String {
        format!("http://{}/{EPICOR_INSTANCE}", self.addr)
    }

    /// The setup (company, user, password, API key).
    pub fn config(&self) -> &FakeEpicorConfig {
        &self.inner.config
    }

    /// Switches the failure mode.
    pub fn set_mode(&self, mode: EpicorMode) {
        *self
            .inner
            .mode
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// Delays every answer by `delay` (zero: no delay).
    pub fn set_delay(&self, delay: Duration) {
        *self
            .inner
            .delay
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = delay;
    }

    /// The next `n` calls answer 503.
    pub fn fail_next(&self, n: u64) {
        self.inner.fail_next.store(n, Ordering::SeqCst);
    }

    /// How many times `method` (`GetByID`, `UpdateExt`, `TokenResource.svc`) was called, whatever
    /// the outcome.
    pub fn calls(&self, method: &str) -> u64 {
        self.inner
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// Calls refused for a bad or missing API key or user authentication.
    pub fn refused_auth(&self) -> u64 {
        self.inner.refused_auth.load(Ordering::SeqCst)
    }

    /// Invalidates every issued token (as an Epicor restart does).
    pub fn revoke_tokens(&self) {
        self.inner.tables().tokens.clear();
    }

    /// Sets a User Code directly (as an administrator in User Codes Maintenance would).
    pub fn set_user_code(&self, code_type_id: &str, code_id: &str, long_desc: &str) {
        let mut tables = self.inner.tables();
        tables.types.entry(code_type_id.to_owned()).or_default();
        let row = tables
            .codes
            .entry((code_type_id.to_owned(), code_id.to_owned()))
            .or_insert_with(|| new_row(true));
        row.long_desc = long_desc.to_owned();
        row.sys_rev_id += 1;
    }

    /// The `LongDesc` of a User Code, if the code exists.
    pub fn user_code(&self, code_type_id: &str, code_id: &str) -> Option<String> {
        self.user_code_column(code_type_id, code_id, "LongDesc")
    }

    /// A column (`LongDesc` or `CodeDesc`) of an active User Code, if the code exists.
    pub fn user_code_column(
        &self,
        code_type_id: &str,
        code_id: &str,
        column: &str,
    ) -> Option<String> {
        let tables = self.inner.tables();
        let row = tables
            .codes
            .get(&(code_type_id.to_owned(), code_id.to_owned()))?;
        if !row.is_active {
            return None;
        }
        Some(match column {
            "CodeDesc" => row.code_desc.clone(),
            _ => row.long_desc.clone(),
        })
    }

    /// `SysRevID` of a User Code (how many times it was written), 0 if it does not exist.
    pub fn revision(&self, code_type_id: &str, code_id: &str) -> i64 {
        self.inner
            .tables()
            .codes
            .get(&(code_type_id.to_owned(), code_id.to_owned()))
            .map_or(0, |row| row.sys_rev_id)
    }

    /// Starts the data directive: posts job updates to `{field_service}/epicor/job-updates`
    /// with the key in User Code `GHA`/`LINKKEY` (`LongDesc`), one after the other, pausing
    /// `pause` between calls.
    pub fn start_data_directive(&self, field_service: &str, pause: Duration) -> DataDirective {
        self.start_data_directive_for(field_service, "GHA", "LINKKEY", "LongDesc", pause)
    }

    /// [`FakeEpicor::start_data_directive`] with another code and column.
    pub fn start_data_directive_for(
        &self,
        field_service: &str,
        code_type_id: &str,
        code_id: &str,
        column: &str,
        pause: Duration,
    ) -> DataDirective {
        let stats = Arc::new(DirectiveStats::default());
        let url = format!("{}/epicor/job-updates", field_service.trim_end_matches('/'));
        let inner = self.inner.clone();
        let (code_type_id, code_id, column) = (
            code_type_id.to_owned(),
            code_id.to_owned(),
            column.to_owned(),
        );
        let task = tokio::spawn(directive_loop(
            inner,
            url,
            code_type_id,
            code_id,
            column,
            pause,
            stats.clone(),
        ));
        DataDirective { stats, task }
    }
}

fn new_row(is_active: bool) -> CodeRow {
    CodeRow {
        is_active,
        code_desc: String::new(),
        long_desc: String::new(),
        sys_rev_id: 0,
        sys_row_id: format!(
            "{}-{}",
            random_hex(4).unwrap_or_default(),
            random_hex(6).unwrap_or_default()
        ),
    }
}

/// Epicor's REST error body.
fn epicor_error(status: StatusCode, message: &str, error_type: &str) -> Response {
    let body = json!({
        "HttpStatus": status.as_u16(),
        "ReasonPhrase": "REST API Exception",
        "ErrorMessage": message,
        "ErrorType": error_type,
        "ErrorDetails": [{"Message": message, "Type": "Error"}],
        "CorrelationId": random_hex(8).unwrap_or_default(),
    });
    (status, Json(body)).into_response()
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [("content-type", "text/html")],
        "<h1>Service Unavailable</h1>",
    )
        .into_response()
}

async fn not_found() -> Response {
    epicor_error(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
        "Epicor.RESTApi.ResourceNotFound",
    )
}

/// Counts the call, then applies the delay, the down mode and `fail_next`.
async fn preamble(inner: &Inner, method: &str) -> Option<Response> {
    *inner
        .calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(method.to_owned())
        .or_insert(0) += 1;
    let delay = *inner.delay.lock().unwrap_or_else(PoisonError::into_inner);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if inner.mode() == EpicorMode::Down {
        return Some(unavailable());
    }
    let failing = inner
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    failing.then(unavailable)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `Authorization: Basic` names the integration user.
fn basic_ok(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some(encoded) = header(headers, "authorization").and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let expected = format!("{}:{}", inner.config.username, inner.config.password);
    decoded == expected.as_bytes()
}

/// Checks the API key, then the user (Basic or a live bearer token).
fn authenticate(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    if header(headers, "x-api-key") != Some(inner.config.api_key.as_str()) {
        inner.refused_auth.fetch_add(1, Ordering::SeqCst);
        return Some(epicor_error(
            StatusCode::UNAUTHORIZED,
            "Invalid or missing API Key.",
            "Epicor.RESTApi.ApiKeyException",
        ));
    }
    let user_ok = match header(headers, "authorization") {
        Some(value) if value.starts_with("Basic ") => basic_ok(inner, headers),
        Some(value) => value.strip_prefix("Bearer ").is_some_and(|token| {
            inner
                .tables()
                .tokens
                .get(token)
                .is_some_and(|expiry| Instant::now() < *expiry)
        }),
        None => false,
    };
    if !user_ok {
        inner.refused_auth.fetch_add(1, Ordering::SeqCst);
        return Some(epicor_error(
            StatusCode::UNAUTHORIZED,
            "Authorization has been denied for this request.",
            "Epicor.RESTApi.UnauthorizedException",
        ));
    }
    None
}

async fn token(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if let Some(answer) = preamble(&inner, "TokenResource.svc").await {
        return answer;
    }
    if !basic_ok(&inner, &headers) {
        inner.refused_auth.fetch_add(1, Ordering::SeqCst);
        return epicor_error(
            StatusCode::UNAUTHORIZED,
            "The user name or password is incorrect.",
            "Epicor.RESTApi.UnauthorizedException",
        );
    }
    let token = random_hex(24).unwrap_or_default();
    let lifetime = inner.config.token_lifetime;
    inner
        .tables()
        .tokens
        .insert(token.clone(), Instant::now() + lifetime);
    Json(json!({
        "AccessToken": token,
        "ExpiresIn": lifetime.as_secs(),
        "TokenType": "Bearer",
    }))
    .into_response()
}

async fn service_call(
    State(inner): State<Arc<Inner>>,
    Path((company, service, method)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(answer) = preamble(&inner, &method).await {
        return answer;
    }
    if let Some(answer) = authenticate(&inner, &headers) {
        return answer;
    }
    if company != inner.config.company {
        return epicor_error(
            StatusCode::BAD_REQUEST,
            &format!("Company {company} is not valid for this user."),
            "Ice.Common.BusinessObjectException",
        );
    }
    if service != "Ice.BO.UserCodesSvc" {
        return not_found().await;
    }
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return epicor_error(
            StatusCode::BAD_REQUEST,
            "Unable to deserialize entity. Input data is not in correct format.",
            "Epicor.RESTApi.ErrorHandling.BadRequestException",
        );
    };
    match method.as_str() {
        "GetByID" => get_by_id(&inner, &input),
        "UpdateExt" => update_ext(&inner, &input),
        _ => not_found().await,
    }
}

fn row_json(company: &str, code_type_id: &str, code_id: &str, row: &CodeRow) -> Value {
    json!({
        "Company": company,
        "CodeTypeID": code_type_id,
        "CodeID": code_id,
        "IsActive": row.is_active,
        "CodeDesc": row.code_desc,
        "LongDesc": row.long_desc,
        "CreateDate": "2026-01-01T00:00:00",
        "CreateUser": "manager",
        "GlobalUDCodes": false,
        "GlobalLock": false,
        "SystemFlag": false,
        "SysRevID": row.sys_rev_id,
        "SysRowID": row.sys_row_id,
        "BitFlag": 0,
        "codeTypeIDDescCodeTypeDesc": "",
        "RowMod": "",
    })
}

fn tableset(inner: &Inner, tables: &Tables, code_type_id: &str) -> Option<Value> {
    let company = &inner.config.company;
    let description = tables.types.get(code_type_id)?;
    let codes: Vec<Value> = tables
        .codes
        .iter()
        .filter(|((kind, _), _)| kind == code_type_id)
        .map(|((kind, id), row)| row_json(company, kind, id, row))
        .collect();
    Some(json!({
        "UDCodeType": [{
            "Company": company, "CodeTypeID": code_type_id, "CodeTypeDesc": description,
            "LongDesc": "", "AutoSequence": false, "SequenceID": 0, "CGCCode": "",
            "GlobalUDCodeType": false, "GlobalLock": false, "SystemFlag": false,
            "SysRevID": 1, "SysRowID": "00000000-0000-0000-0000-000000000001", "BitFlag": 0,
            "RowMod": "",
        }],
        "UDCodes": codes,
        "ExtensionTables": [],
    }))
}

fn get_by_id(inner: &Inner, input: &Value) -> Response {
    let Some(code_type_id) = input.get("codeTypeID").and_then(Value::as_str) else {
        return epicor_error(
            StatusCode::BAD_REQUEST,
            "Parameter codeTypeID is not found in the input object",
            "Epicor.RESTApi.ErrorHandling.BadRequestException",
        );
    };
    let tables = inner.tables();
    match tableset(inner, &tables, code_type_id) {
        Some(set) => Json(json!({ "returnObj": set })).into_response(),
        None => epicor_error(
            StatusCode::NOT_FOUND,
            "Record not found.",
            "Ice.Common.RecordNotFoundException",
        ),
    }
}

fn update_ext(inner: &Inner, input: &Value) -> Response {
    let rows = input
        .get("ds")
        .and_then(|ds| ds.get("UDCodes"))
        .and_then(Value::as_array);
    let flags_ok = input
        .get("continueProcessingOnError")
        .is_some_and(Value::is_boolean)
        && input
            .get("rollbackParentOnChildError")
            .is_some_and(Value::is_boolean);
    let Some(rows) = rows.filter(|_| flags_ok) else {
        return epicor_error(
            StatusCode::BAD_REQUEST,
            "Parameter ds is not found in the input object",
            "Epicor.RESTApi.ErrorHandling.BadRequestException",
        );
    };
    match inner.mode() {
        EpicorMode::RejectUpdates => {
            return epicor_error(
                StatusCode::BAD_REQUEST,
                "User Code changes are locked by a method directive.",
                "Ice.Common.BusinessObjectException",
            );
        }
        EpicorMode::RowErrors => {
            return Json(json!({
                "returnObj": {"BOUpdError": [{
                    "TableName": "UDCodes", "ErrorLevel": "Error", "ErrorType": "Exception",
                    "ErrorText": "Field security denies the change.",
                    "ErrorSysRowID": "00000000-0000-0000-0000-000000000000",
                    "SysRowID": "00000000-0000-0000-0000-000000000000", "RowMod": "U"}]},
                "parameters": {"ds": input["ds"].clone(), "errorsOccurred": true},
            }))
            .into_response();
        }
        EpicorMode::SwallowUpdates => {
            return Json(json!({
                "returnObj": {"BOUpdError": []},
                "parameters": {"ds": input["ds"].clone(), "errorsOccurred": false},
            }))
            .into_response();
        }
        EpicorMode::Normal | EpicorMode::Down => {}
    }
    let mut errors = Vec::new();
    let mut tables = inner.tables();
    let mut written = Vec::new();
    for row in rows {
        let text = |key: &str| row.get(key).and_then(Value::as_str).unwrap_or_default();
        let (company, kind, id, row_mod) = (
            text("Company"),
            text("CodeTypeID"),
            text("CodeID"),
            text("RowMod"),
        );
        let key = (kind.to_owned(), id.to_owned());
        let mut error = |message: &str| {
            errors.push(json!({
                "TableName": "UDCodes", "ErrorLevel": "Error", "ErrorType": "Exception",
                "ErrorText": message, "ErrorSysRowID": "", "SysRowID": "", "RowMod": row_mod,
            }));
        };
        if company != inner.config.company {
            error("Company is not valid.");
            continue;
        }
        if !tables.types.contains_key(kind) {
            error("User Code Type is not valid.");
            continue;
        }
        let exists = tables.codes.contains_key(&key);
        match row_mod {
            "U" if !exists => {
                error("Record not found.");
                continue;
            }
            "A" if exists => {
                error("A record with this key already exists.");
                continue;
            }
            "U" | "A" => {}
            _ => {
                error("RowMod must be A or U.");
                continue;
            }
        }
        let stored = tables.codes.entry(key).or_insert_with(|| new_row(false));
        if let Some(active) = row.get("IsActive").and_then(Value::as_bool) {
            stored.is_active = active;
        }
        if let Some(value) = row.get("LongDesc").and_then(Value::as_str) {
            stored.long_desc = value.to_owned();
        }
        if let Some(value) = row.get("CodeDesc").and_then(Value::as_str) {
            stored.code_desc = value.to_owned();
        }
        stored.sys_rev_id += 1;
        written.push(row_json(&inner.config.company, kind, id, stored));
    }
    let errors_occurred = !errors.is_empty();
    Json(json!({
        "returnObj": {"BOUpdError": errors},
        "parameters": {
            "ds": {"UDCodeType": [], "UDCodes": written, "ExtensionTables": []},
            "errorsOccurred": errors_occurred,
        },
    }))
    .into_response()
}

/// Counters of a [`DataDirective`].
#[derive(Debug, Default)]
struct DirectiveStats {
    accepted: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    rejections: Mutex<Vec<String>>,
}

/// What the directive saw so far.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectiveCounts {
    /// 2xx answers.
    pub accepted: u64,
    /// 401 and 403 answers: the key was refused.
    pub rejected: u64,
    /// Other answers and transport errors.
    pub failed: u64,
    /// Rounds with no key in the User Code (nothing sent).
    pub skipped: u64,
}

/// The data-directive loop; stops when dropped or [`DataDirective::stop`]ped.
#[derive(Debug)]
pub struct DataDirective {
    stats: Arc<DirectiveStats>,
    task: JoinHandle<()>,
}

impl Drop for DataDirective {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DataDirective {
    /// The counters now.
    pub fn counts(&self) -> DirectiveCounts {
        DirectiveCounts {
            accepted: self.stats.accepted.load(Ordering::SeqCst),
            rejected: self.stats.rejected.load(Ordering::SeqCst),
            failed: self.stats.failed.load(Ordering::SeqCst),
            skipped: self.stats.skipped.load(Ordering::SeqCst),
        }
    }

    /// Descriptions of the rejected calls (status and the key's first characters).
    pub fn rejections(&self) -> Vec<String> {
        self.stats
            .rejections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the loop and waits for it (the call in flight is abandoned).
    pub async fn stop(self) -> DirectiveCounts {
        self.task.abort();
        self.counts()
    }

    /// Waits until at least `n` calls were accepted in total, at most `timeout`.
    pub async fn wait_accepted(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stats.accepted.load(Ordering::SeqCst) >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

async fn directive_loop(
    inner: Arc<Inner>,
    url: String,
    code_type_id: String,
    code_id: String,
    column: String,
    pause: Duration,
    stats: Arc<DirectiveStats>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let mut job: u64 = 0;
    let statuses = ["open", "scheduled", "in_progress", "completed"];
    loop {
        // What Epicor holds now, read the way the directive's LINQ query would.
        let key = {
            let tables = inner.tables();
            tables
                .codes
                .get(&(code_type_id.clone(), code_id.clone()))
                .filter(|row| row.is_active)
                .map(|row| match column.as_str() {
                    "CodeDesc" => row.code_desc.clone(),
                    _ => row.long_desc.clone(),
                })
                .filter(|key| !key.is_empty())
        };
        if let Some(key) = key {
            job += 1;
            let status = statuses[usize::try_from(job % 4).unwrap_or(0)];
            let result = client
                .post(&url)
                .header("x-api-key", &key)
                .json(&json!({ "job_number": format!("J-{:05}", job % 500), "status": status }))
                .send()
                .await;
            match result.map(|r| r.status()) {
                Ok(status) if status.is_success() => {
                    stats.accepted.fetch_add(1, Ordering::SeqCst);
                }
                Ok(status)
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN =>
                {
                    stats.rejected.fetch_add(1, Ordering::SeqCst);
                    let prefix: String = key.chars().take(10).collect();
                    stats
                        .rejections
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(format!("{status} for key {prefix}…"));
                }
                Ok(_) | Err(_) => {
                    stats.failed.fetch_add(1, Ordering::SeqCst);
                }
            }
        } else {
            stats.skipped.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        let pair = format!("{user}:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    #[tokio::test]
    async fn calls_need_the_api_key_and_the_user() {
        let epicor = FakeEpicor::start(FakeEpicorConfig::default())
            .await
            .unwrap();
        let config = epicor.config().clone();
        let url = format!(
            "{}/api/v2/odata/{}/Ice.BO.UserCodesSvc/GetByID",
            epicor.base_url(),
            config.company
        );
        let http = reqwest::Client::new();
        let body = json!({"codeTypeID": "GHA"});
        let no_key = http
            .post(&url)
            .header("authorization", basic(&config.username, &config.password))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(no_key.status(), 401);
        let error: Value = no_key.json().await.unwrap();
        assert_eq!(error["HttpStatus"], 401);
        assert_eq!(error["ReasonPhrase"], "REST API Exception");

        let bad_password = http
            .post(&url)
            .header("x-api-key", &config.api_key)
            .header("authorization", basic(&config.username, "wrong"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(bad_password.status(), 401);

        let ok = http
            .post(&url)
            .header("x-api-key", &config.api_key)
            .header("authorization", basic(&config.username, &config.password))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let set: Value = ok.json().await.unwrap();
        assert_eq!(set["returnObj"]["UDCodeType"][0]["CodeTypeID"], "GHA");
        assert_eq!(set["returnObj"]["UDCodes"], json!([]));
        assert_eq!(epicor.refused_auth(), 2);
        assert_eq!(epicor.calls("GetByID"), 3);
    }

    #[tokio::test]
    async fn update_ext_adds_and_updates_rows_and_bumps_the_revision() {
        let epicor = FakeEpicor::start(FakeEpicorConfig::default())
            .await
            .unwrap();
        let config = epicor.config().clone();
        let url = format!(
            "{}/api/v2/odata/{}/Ice.BO.UserCodesSvc/UpdateExt",
            epicor.base_url(),
            config.company
        );
        let http = reqwest::Client::new();
        let update = |row_mod: &str, value: &str| {
            json!({"ds": {"UDCodeType": [], "UDCodes": [{"Company": config.company,
                "CodeTypeID": "GHA", "CodeID": "LINKKEY", "LongDesc": value,
                "IsActive": true, "RowMod": row_mod}]},
                "continueProcessingOnError": false, "rollbackParentOnChildError": true})
        };
        let send = |body: Value| {
            http.post(&url)
                .header("x-api-key", &config.api_key)
                .header("authorization", basic(&config.username, &config.password))
                .json(&body)
                .send()
        };
        let missing: Value = send(update("U", "k1")).await.unwrap().json().await.unwrap();
        assert_eq!(missing["parameters"]["errorsOccurred"], true);
        assert_eq!(
            missing["returnObj"]["BOUpdError"][0]["ErrorText"],
            "Record not found."
        );

        let added: Value = send(update("A", "k1")).await.unwrap().json().await.unwrap();
        assert_eq!(added["parameters"]["errorsOccurred"], false);
        assert_eq!(epicor.user_code("GHA", "LINKKEY").as_deref(), Some("k1"));
        send(update("U", "k2")).await.unwrap();
        assert_eq!(epicor.user_code("GHA", "LINKKEY").as_deref(), Some("k2"));
        assert_eq!(epicor.revision("GHA", "LINKKEY"), 2);

        epicor.set_mode(EpicorMode::RejectUpdates);
        let refused = send(update("U", "k3")).await.unwrap();
        assert_eq!(refused.status(), 400);
        epicor.set_mode(EpicorMode::Down);
        assert_eq!(send(update("U", "k3")).await.unwrap().status(), 503);
        assert_eq!(epicor.user_code("GHA", "LINKKEY").as_deref(), Some("k2"));
    }
}
