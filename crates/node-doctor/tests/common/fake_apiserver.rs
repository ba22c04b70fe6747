//! A fake Kubernetes API server on loopback, for the agent's end-to-end test: plain HTTP/1.1,
//! one Node, and just enough of server-side apply to be strict about what matters here —
//! conditions merge by `type`, each field manager owns the types it applied, a manager's
//! later apply removes the types it no longer sends, and an apply without `force` of a type
//! another manager owns is a 409. A merge-patch fake would agree with the bugs this test
//! must catch (a whole conditions list replaced, kubelet's Ready lost).
//!
//! Every request is recorded, so the test can assert on the sequence of writes.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    /// Conditions by type.
    conditions: BTreeMap<String, Value>,
    /// Owning manager by condition type.
    owner: BTreeMap<String, String>,
    requests: Vec<Recorded>,
    events: Vec<Value>,
    /// While set, every request is answered 503 (the API server down).
    down: bool,
}

pub struct FakeApiServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeApiServer {
    /// A server for Node `node` holding kubelet's `Ready`.
    pub fn start(node: &str) -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut st = State::default();
        st.conditions.insert(
            "Ready".into(),
            json!({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                   "lastTransitionTime": "2026-11-20T10:00:00Z", "lastHeartbeatTime": "2026-12-01T10:00:00Z"}),
        );
        st.owner.insert("Ready".into(), "kubelet".into());
        let state = Arc::new(Mutex::new(st));
        let s = state.clone();
        let node = node.to_string();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                let node = node.clone();
                std::thread::spawn(move || serve(conn, &s, &node));
            }
        });
        FakeApiServer { port, state }
    }

    /// A kubeconfig pointing at this server (no TLS, no credentials).
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let p = dir.join("kubeconfig");
        std::fs::write(
            &p,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{}\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n\
                 users:\n- name: fake\n  user: {{}}\n",
                self.port
            ),
        )
        .unwrap();
        p
    }

    pub fn condition(&self, type_: &str) -> Option<Value> {
        self.state.lock().unwrap().conditions.get(type_).cloned()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn events(&self) -> Vec<Value> {
        self.state.lock().unwrap().events.clone()
    }

    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Pretends another manager (node-problem-detector) owns `type_`.
    pub fn owned_by_other(&self, type_: &str) {
        let mut st = self.state.lock().unwrap();
        st.owner
            .insert(type_.into(), "node-problem-detector".into());
        st.conditions.insert(
            type_.into(),
            json!({"type": type_, "status": "False", "reason": "NPDSaysFine", "message": "", "lastTransitionTime": "2026-11-20T10:00:00Z"}),
        );
    }
}

fn serve(conn: TcpStream, state: &Arc<Mutex<State>>, node: &str) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut len = 0usize;
        let mut ctype = String::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "content-type" => ctype = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target
            .split_once('?')
            .map_or((target.clone(), String::new()), |(p, q)| {
                (p.into(), q.into())
            });
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (code, resp) = handle(state, node, &method, &path, &query, &ctype, body);
        let text = serde_json::to_string(&resp).unwrap();
        let reason = if code < 300 { "OK" } else { "Error" };
        let _ = write!(
            out,
            "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        let _ = out.flush();
    }
}

fn status(code: u16, reason: &str, msg: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": msg, "code": code}),
    )
}

fn handle(
    state: &Arc<Mutex<State>>,
    node: &str,
    method: &str,
    path: &str,
    query: &str,
    ctype: &str,
    body: Value,
) -> (u16, Value) {
    let mut st = state.lock().unwrap();
    st.requests.push(Recorded {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        content_type: ctype.into(),
        body: body.clone(),
    });
    if st.down {
        return status(503, "ServiceUnavailable", "scripted: down");
    }
    let node_path = format!("/api/v1/nodes/{node}");
    let node_json = |st: &State| {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "uid": "fake-node-uid"},
               "status": {"nodeInfo": {"bootID": "fake-boot"}, "conditions": st.conditions.values().cloned().collect::<Vec<_>>()}})
    };
    match (method, path) {
        ("GET", p) if p == node_path => (200, node_json(&st)),
        ("PATCH", p) if p == format!("{node_path}/status") => {
            if ctype != "application/apply-patch+yaml" {
                return status(415, "UnsupportedMediaType", ctype);
            }
            let q: BTreeMap<&str, &str> = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .collect();
            let Some(manager) = q.get("fieldManager").map(|m| m.to_string()) else {
                return status(400, "BadRequest", "fieldManager is required for apply");
            };
            let force = q.get("force") == Some(&"true");
            if body["apiVersion"] != "v1"
                || body["kind"] != "Node"
                || body["metadata"]["name"] != node
            {
                return status(
                    400,
                    "BadRequest",
                    "apply needs apiVersion, kind and metadata.name",
                );
            }
            let sent: Vec<Value> = body["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            // Conflicts first: a type another manager owns, without force.
            for c in &sent {
                let t = c["type"].as_str().unwrap_or("");
                if let Some(o) = st.owner.get(t)
                    && *o != manager
                    && !force
                {
                    return status(
                        409,
                        "Conflict",
                        &format!("conflict with \"{o}\": .status.conditions[type=\"{t}\"]"),
                    );
                }
            }
            let sent_types: Vec<String> = sent
                .iter()
                .filter_map(|c| c["type"].as_str().map(str::to_string))
                .collect();
            // Types this manager owned and no longer sends go away.
            let dropped: Vec<String> = st
                .owner
                .iter()
                .filter(|(t, o)| **o == manager && !sent_types.contains(t))
                .map(|(t, _)| t.clone())
                .collect();
            for t in dropped {
                st.owner.remove(&t);
                st.conditions.remove(&t);
            }
            for c in sent {
                let t = c["type"].as_str().unwrap_or("").to_string();
                st.owner.insert(t.clone(), manager.clone());
                st.conditions.insert(t, c);
            }
            (200, node_json(&st))
        }
        ("POST", "/apis/events.k8s.io/v1/namespaces/default/events") => {
            st.events.push(body.clone());
            (201, body)
        }
        _ => status(404, "NotFound", path),
    }
}
