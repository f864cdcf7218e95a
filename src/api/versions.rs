//! The version documents at `/` (300) and `/v3` (200).

use serde_json::json;

use crate::api::microversion::{MAX, MIN};
use crate::api::Reply;
use crate::error::Result;

/// The version document; `root` answers 300 Multiple Choices as Cinder does.
pub fn root(base: &str, root: bool) -> Result<Reply> {
    let doc = json!({"versions": [{
        "id": "v3.0",
        "status": "CURRENT",
        "version": MAX.to_string(),
        "min_version": MIN.to_string(),
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"href": format!("{base}/v3/"), "rel": "self"},
            {"href": "https://docs.openstack.org/", "type": "text/html", "rel": "describedby"},
        ],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.volume+json;version=3",
        }],
    }]});
    Ok(Reply::json(if root { 300 } else { 200 }, doc))
}
