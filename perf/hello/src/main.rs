//! The floor: what any `lambda_http` function costs before it does anything.

use std::convert::Infallible;

use lambda_http::{http::header, service_fn, Body, Error, Request, Response};

async fn hello(_req: Request) -> Result<Response<Body>, Infallible> {
    let mut response = Response::new(Body::from("hello"));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(hello)).await
}
