//! HTTP transport: JSON-RPC 2.0 single and batch requests, errors always with HTTP 200.

use {
    super::Rpc,
    http_body_util::{BodyExt, Full, Limited},
    hyper::{
        body::{Bytes, Incoming},
        header, Method, Request, Response, StatusCode,
    },
    hyper_util::rt::TokioIo,
    jsonrpc_core::{Error, ErrorCode},
    serde_json::{json, Value},
    std::{io::Read, net::SocketAddr, sync::Arc},
    tokio::net::TcpListener,
};

/// Largest request body accepted (batches of transactions fit comfortably).
const MAX_REQUEST_BYTES: usize = 50 * 1024 * 1024;

fn error_response(id: Value, error: Error) -> Value {
    json!({ "jsonrpc": "2.0", "error": error, "id": id })
}

fn http_json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

/// One request object; `None` for a notification (no id), which gets no answer.
async fn handle_call(rpc: Arc<Rpc>, call: Value) -> Option<Value> {
    let Value::Object(mut obj) = call else {
        return Some(error_response(Value::Null, Error::invalid_request()));
    };
    let id = obj.remove("id");
    let version_ok = obj.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
    let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
    let (true, Some(method)) = (version_ok, method) else {
        return Some(error_response(id.unwrap_or(Value::Null), Error::invalid_request()));
    };
    let params = obj.remove("params");
    let outcome = tokio::task::spawn_blocking(move || rpc.dispatch(&method, params))
        .await
        .unwrap_or_else(|e| {
            Err(Error {
                code: ErrorCode::InternalError,
                message: format!("request handler failed: {e}"),
                data: None,
            })
        });
    let id = id?;
    Some(match outcome {
        Ok(result) => json!({ "jsonrpc": "2.0", "result": result, "id": id }),
        Err(error) => error_response(id, error),
    })
}

/// Tolerates `Content-Encoding: gzip` on a body that is not actually compressed.
fn maybe_gunzip(body: Bytes) -> Vec<u8> {
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).is_ok() {
            return out;
        }
    }
    body.to_vec()
}

async fn handle_http(rpc: Arc<Rpc>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if req.method() == Method::GET {
        // The real validator answers plain GET /health.
        let (status, text) = match req.uri().path() {
            "/health" => (StatusCode::OK, "ok"),
            _ => (StatusCode::METHOD_NOT_ALLOWED, "Used HTTP Method is not allowed. POST or OPTIONS is required"),
        };
        return Ok(Response::builder().status(status).body(Full::new(Bytes::from(text))).unwrap());
    }
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => maybe_gunzip(collected.to_bytes()),
        Err(_) => return Ok(http_json(StatusCode::PAYLOAD_TOO_LARGE, error_response(Value::Null, Error::invalid_request()).to_string())),
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return Ok(http_json(StatusCode::OK, error_response(Value::Null, Error::parse_error()).to_string())),
    };
    let answer = match parsed {
        Value::Array(calls) if calls.is_empty() => error_response(Value::Null, Error::invalid_request()),
        Value::Array(calls) => {
            let mut answers = Vec::with_capacity(calls.len());
            for call in calls {
                if let Some(a) = handle_call(rpc.clone(), call).await {
                    answers.push(a);
                }
            }
            Value::Array(answers)
        }
        call => match handle_call(rpc, call).await {
            Some(a) => a,
            None => return Ok(http_json(StatusCode::OK, String::new())),
        },
    };
    Ok(http_json(StatusCode::OK, answer.to_string()))
}

pub async fn serve(rpc: Arc<Rpc>, listener: TcpListener) {
    loop {
        let (stream, _peer): (_, SocketAddr) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                log::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let rpc = rpc.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle_http(rpc.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
