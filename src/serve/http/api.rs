//! The JSON API (`/v1/...`): request parsing that answers every bad input with 400 and `{"error": ...}`,
//! and handlers that hand the GPU work to the batcher and wait for its reply.

use super::batcher::{Job, Prediction, RecommendJob, Reply, UserRecommendations};
use super::State;
use crate::checkpoint::Checkpoint;
use crate::serve::MAX_K;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use tokio::sync::oneshot;

/// Most users in one recommend request, and most pairs in one predict request.
pub const MAX_USERS: usize = 1024;
/// Largest request body accepted (a request of MAX_USERS ids is far smaller).
pub const MAX_BODY: usize = 1 << 20;
/// A longer body is still read and thrown away up to this size before the 413, so that a client that
/// writes its whole body before reading (most do) gets the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 16 << 20;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// The query string of a GET, decoded strictly: a parameter that is not UTF-8 once percent-decoded, an
/// unknown or a repeated one is refused (a lossy decoding would turn a bad title into a silent OOV).
struct Params(HashMap<String, String>);

impl Params {
    fn parse(uri: &Uri, known: &[&str]) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for pair in uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .map(|c| c.into_owned())
            };
            let name = decode(name)
                .map_err(|_| ApiError::bad("a query parameter name is not valid UTF-8"))?;
            let value = decode(value)
                .map_err(|_| ApiError::bad(format!("query parameter {name} is not valid UTF-8")))?;
            if !known.contains(&name.as_str()) {
                return Err(ApiError::bad(format!(
                    "unknown query parameter {name:?} (expected {})",
                    known.join(", ")
                )));
            }
            if map.insert(name.clone(), value).is_some() {
                return Err(ApiError::bad(format!("query parameter {name} given twice")));
            }
        }
        Ok(Self(map))
    }

    fn required(&mut self, name: &str) -> Result<String, ApiError> {
        self.0
            .remove(name)
            .ok_or_else(|| ApiError::bad(format!("missing query parameter {name}")))
    }

    fn k(&mut self) -> Result<usize, ApiError> {
        match self.0.remove("k") {
            None => Ok(10),
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| ApiError::bad(format!("k must be a whole number, got {v:?}")))
                .and_then(check_k),
        }
    }

    fn flag(&mut self, name: &str) -> Result<bool, ApiError> {
        match self.0.remove(name).as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(v) => Err(ApiError::bad(format!(
                "{name} must be true or false, got {v:?}"
            ))),
        }
    }
}

fn check_k(k: i64) -> Result<usize, ApiError> {
    if (1..=MAX_K as i64).contains(&k) {
        Ok(k as usize)
    } else {
        Err(ApiError::bad(format!(
            "k must be between 1 and {MAX_K}, got {k}"
        )))
    }
}

/// A body announced beyond DRAIN_LIMIT is refused before any of it is read.
fn check_length(headers: &HeaderMap) -> Result<(), ApiError> {
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(n) if n > DRAIN_LIMIT as u64 => Err(too_large()),
        _ => Ok(()),
    }
}

fn too_large() -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("the request body is larger than {MAX_BODY} bytes"),
    }
}

/// A JSON body of at most MAX_BODY bytes; a syntax or type error is a 400 naming where it is.
async fn body<T: for<'de> Deserialize<'de>>(mut body: Body) -> Result<T, ApiError> {
    let (mut bytes, mut total) = (Vec::new(), 0usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total <= MAX_BODY {
            bytes.extend_from_slice(&data);
        } else if total > DRAIN_LIMIT {
            break;
        }
    }
    if total > MAX_BODY {
        return Err(too_large());
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad(format!("malformed JSON body: {e}")))
}

/// A user id as a JSON string or a whole number (u.data's ids are numbers).
#[derive(Deserialize)]
#[serde(untagged)]
enum UserId {
    Text(String),
    Number(u64),
}

impl UserId {
    fn into_string(self) -> String {
        match self {
            UserId::Text(s) => s,
            UserId::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendBody {
    users: Vec<UserId>,
    #[serde(default = "ten")]
    k: i64,
    #[serde(default)]
    exclude_seen: bool,
}

fn ten() -> i64 {
    10
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair {
    user: UserId,
    movie: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictBody {
    pairs: Vec<Pair>,
}

#[derive(Serialize)]
pub struct Recommendations {
    pub model_version: u64,
    pub k: usize,
    pub exclude_seen: bool,
    pub results: Vec<UserRecommendations>,
}

#[derive(Serialize)]
pub struct Predictions {
    pub model_version: u64,
    pub predictions: Vec<Prediction>,
}

/// Sends a job built around `reply` to the GPU thread and waits for its answer.
async fn ask<T>(state: &State, job: impl FnOnce(Reply<T>) -> Job) -> Result<(T, u64), ApiError> {
    let (tx, rx) = oneshot::channel();
    if !state.batcher.send(job(tx)) {
        return Err(ApiError::internal("the GPU thread has stopped"));
    }
    match rx.await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(ApiError::internal(e)),
        Err(_) => Err(ApiError::internal(
            "the GPU thread stopped before answering",
        )),
    }
}

async fn recommend(
    state: &State,
    users: Vec<String>,
    k: usize,
    exclude_seen: bool,
) -> Result<Json<Recommendations>, ApiError> {
    if users.is_empty() {
        return Err(ApiError::bad("users is empty"));
    }
    if users.len() > MAX_USERS {
        return Err(ApiError::bad(format!(
            "too many users: {} (at most {MAX_USERS} per request)",
            users.len()
        )));
    }
    let (results, model_version) = ask(state, |reply| {
        Job::Recommend(RecommendJob {
            users,
            k,
            exclude_seen,
            reply,
        })
    })
    .await?;
    Ok(Json(Recommendations {
        model_version,
        k,
        exclude_seen,
        results,
    }))
}

pub async fn recommend_get(
    axum::extract::State(state): axum::extract::State<State>,
    uri: Uri,
) -> Result<Json<Recommendations>, ApiError> {
    let mut p = Params::parse(&uri, &["user", "k", "exclude_seen"])?;
    let user = p.required("user")?;
    let (k, exclude_seen) = (p.k()?, p.flag("exclude_seen")?);
    recommend(&state, vec![user], k, exclude_seen).await
}

pub async fn recommend_post(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
    raw: Body,
) -> Result<Json<Recommendations>, ApiError> {
    check_length(&headers)?;
    let b: RecommendBody = body(raw).await?;
    let k = check_k(b.k)?;
    let users = b.users.into_iter().map(UserId::into_string).collect();
    recommend(&state, users, k, b.exclude_seen).await
}

async fn predict(
    state: &State,
    pairs: Vec<(String, String)>,
) -> Result<(Vec<Prediction>, u64), ApiError> {
    if pairs.is_empty() {
        return Err(ApiError::bad("pairs is empty"));
    }
    if pairs.len() > MAX_USERS {
        return Err(ApiError::bad(format!(
            "too many pairs: {} (at most {MAX_USERS} per request)",
            pairs.len()
        )));
    }
    ask(state, |reply| Job::Predict { pairs, reply }).await
}

#[derive(Serialize)]
pub struct OnePrediction {
    pub model_version: u64,
    #[serde(flatten)]
    pub prediction: Prediction,
}

pub async fn predict_get(
    axum::extract::State(state): axum::extract::State<State>,
    uri: Uri,
) -> Result<Json<OnePrediction>, ApiError> {
    let mut p = Params::parse(&uri, &["user", "movie"])?;
    let pair = (p.required("user")?, p.required("movie")?);
    let (mut preds, model_version) = predict(&state, vec![pair]).await?;
    Ok(Json(OnePrediction {
        model_version,
        prediction: preds.remove(0),
    }))
}

pub async fn predict_post(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
    raw: Body,
) -> Result<Json<Predictions>, ApiError> {
    check_length(&headers)?;
    let b: PredictBody = body(raw).await?;
    let pairs = b
        .pairs
        .into_iter()
        .map(|p| (p.user.into_string(), p.movie))
        .collect();
    let (predictions, model_version) = predict(&state, pairs).await?;
    Ok(Json(Predictions {
        model_version,
        predictions,
    }))
}

/// The titles a user rated in training (what `exclude_seen` leaves out), for the page.
pub async fn seen(
    axum::extract::State(state): axum::extract::State<State>,
    uri: Uri,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut p = Params::parse(&uri, &["user"])?;
    let user = p.required("user")?;
    let loaded = state.batcher.loaded();
    let ck = &loaded.ck;
    let row = ck.users.lookup(&user);
    let titles: Vec<&str> = ck
        .seen
        .of(row)
        .iter()
        .filter_map(|&r| ck.titles.token(r).filter(|_| r > 0))
        .collect();
    Ok(Json(json!({
        "model_version": loaded.version,
        "user": user,
        "oov": row == 0,
        "titles": titles,
    })))
}

/// Every user id of the vocabulary (the OOV row left out), for the page's picker.
pub async fn users(
    axum::extract::State(state): axum::extract::State<State>,
) -> Json<serde_json::Value> {
    let loaded = state.batcher.loaded();
    let ids: Vec<&str> = loaded
        .ck
        .users
        .tokens
        .iter()
        .skip(1)
        .map(String::as_str)
        .collect();
    Json(json!({ "model_version": loaded.version, "users": ids }))
}

pub fn model_doc(state: &State) -> serde_json::Value {
    let loaded = state.batcher.loaded();
    let ck: &Checkpoint = &loaded.ck;
    let t = &ck.training;
    json!({
        "model_version": loaded.version,
        "path": state.model_path.display().to_string(),
        "config": {
            "users": ck.cfg.users,
            "movies": ck.cfg.movies,
            "embedding_dim": ck.cfg.embedding_dim,
            "hidden1": ck.cfg.hidden1,
            "hidden2": ck.cfg.hidden2,
        },
        "vocabulary": {
            // Rows of each table, the OOV row 0 included.
            "users": ck.users.rows(),
            "titles": ck.titles.rows(),
        },
        "training": {
            "rating_weight": t.rating_weight,
            "retrieval_weight": t.retrieval_weight,
            "epochs": t.epochs_done,
            "learning_rate": t.learning_rate,
            "batch_size": t.batch_size,
            "split": t.split.describe(),
            "data": t.data,
            "adapter": t.adapter,
            "test": t.test,
        },
        "adapter": state.batcher.adapter,
        "kernel_family": "windowed",
        "limits": {
            "max_k": MAX_K,
            "max_users": MAX_USERS,
            "max_body_bytes": MAX_BODY,
            "max_batch": state.max_batch,
            "max_wait_us": state.max_wait_us,
        },
    })
}

pub async fn model(
    axum::extract::State(state): axum::extract::State<State>,
) -> Json<serde_json::Value> {
    Json(model_doc(&state))
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Loads the model file again and swaps it in between two GPU passes; a file that fails to load or verify
/// is refused and the current model keeps serving.
pub async fn reload(state: &State) -> Result<serde_json::Value, ApiError> {
    let _one_at_a_time = state.reloading.lock().await;
    let path = state.model_path.clone();
    let loaded = tokio::task::spawn_blocking(move || Checkpoint::load(&path))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let result = match loaded {
        Err(e) => Err(ApiError::internal(format!(
            "reload refused, the current model keeps serving: {e:#}"
        ))),
        Ok(ck) => ask(state, |reply| Job::Reload {
            ck: Box::new(ck),
            reply,
        })
        .await
        .map_err(|e| ApiError {
            message: format!(
                "reload refused, the current model keeps serving: {}",
                e.message
            ),
            ..e
        }),
    };
    let label = if result.is_ok() { "ok" } else { "refused" };
    state
        .metrics
        .reloads
        .get_or_create(&super::metrics::ResultLabels {
            result: label.into(),
        })
        .inc();
    let ((), version) = result?;
    let mut doc = model_doc(state);
    doc["reloaded"] = true.into();
    doc["model_version"] = version.into();
    Ok(doc)
}

pub async fn reload_post(
    axum::extract::State(state): axum::extract::State<State>,
) -> Result<Json<serde_json::Value>, ApiError> {
    reload(&state).await.map(Json)
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("no such endpoint: {}", uri.path()),
    }
}
