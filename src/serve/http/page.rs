//! The page at `/`: plain HTML and a little JS (assets/serve/index.html), no build step and nothing
//! fetched from elsewhere. It asks the same JSON API as any client.

use axum::response::Html;

pub const INDEX: &str = include_str!("../../../assets/serve/index.html");

pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}
