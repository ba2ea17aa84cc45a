//! Shared by the benches.
#![allow(dead_code)]

use kermes::Client;

/// Seconds of CPU the server has used (INFO cpu).
pub async fn server_cpu(client: &Client) -> kermes::Result<f64> {
    let info = kermes::helpers::info_map(client, "cpu").await?;
    let get = |k: &str| {
        info.get("cpu", k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok(get("used_cpu_user") + get("used_cpu_sys"))
}
