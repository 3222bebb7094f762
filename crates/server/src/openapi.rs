//! The OpenAPI 3 document, written by hand (the event type lives in the model crate, which
//! carries no schema derive) and kept true by tests: the route table and the document are
//! compared both ways, and responses are checked against these shapes.

use serde_json::{json, Value};

fn string() -> Value {
    json!({"type": "string"})
}
fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}
fn nullable(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("nullable".into(), Value::Bool(true));
    }
    v
}
fn int() -> Value {
    json!({"type": "integer", "minimum": 0})
}
fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}
fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}
fn object(required: &[&str], props: Value) -> Value {
    json!({"type": "object", "required": required, "properties": props})
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema,
           "description": description})
}

fn id_param(description: &str) -> Value {
    json!({"name": "id", "in": "path", "required": true,
           "schema": {"type": "string", "minLength": 1, "maxLength": 1024},
           "description": description})
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn error(description: &str) -> Value {
    json_response(description, r("Error"))
}

/// A GET operation with the error responses every API route can give.
fn get(summary: &str, params: Vec<Value>, ok: Value, extra: &[(&str, &str)]) -> Value {
    let mut responses = json!({
        "200": ok,
        "400": error("Invalid parameters"),
        "401": error("Missing or invalid bearer token (non-loopback listeners)"),
    });
    for (code, d) in extra {
        responses[*code] = error(d);
    }
    json!({"get": {"summary": summary, "parameters": params, "responses": responses}})
}

fn schemas() -> Value {
    let process_ref = object(&["id", "pid"], json!({"id": string(), "pid": int()}));
    let root = object(
        &["id", "pid", "exe"],
        json!({"id": string(), "pid": int(), "exe": string()}),
    );
    let summary_props = json!({
        "id": string(), "title": string(), "score": {"type": "number"},
        "severity": r("Severity"), "techniques": array(string()),
        "root_process": root, "processes": array(process_ref), "hosts": array(string()),
        "first_seen": time(), "last_seen": time(),
    });
    let summary_required = [
        "id",
        "title",
        "score",
        "severity",
        "techniques",
        "root_process",
        "processes",
        "hosts",
        "first_seen",
        "last_seen",
    ];
    let mut detail_props = summary_props.clone();
    detail_props["flags"] = array(r("Flag"));
    detail_props["trace"] = r("Trace");
    let mut detail_required = summary_required.to_vec();
    detail_required.extend(["flags", "trace"]);
    let endpoint = object(&["ip", "port"], json!({"ip": string(), "port": int()}));
    let counters = json!({"type": "object", "additionalProperties": int()});
    json!({
        "Error": object(&["error"], json!({"error": string()})),
        "Severity": {"type": "string", "enum": ["info", "low", "medium", "high", "critical"]},
        "IncidentSummary": object(&summary_required, summary_props),
        "IncidentPage": object(&["items", "total", "limit", "offset"], json!({
            "items": array(r("IncidentSummary")), "total": int(), "limit": int(),
            "offset": int(),
        })),
        "IncidentDetail": object(&detail_required, detail_props),
        "Flag": object(&["rule_id", "title", "severity", "techniques", "time", "kind",
                         "process_id"], json!({
            "rule_id": string(), "title": string(), "severity": r("Severity"),
            "techniques": array(string()), "tactic": string(), "time": time(),
            "kind": string(), "host": string(), "process_id": string(), "pid": int(),
            "exe": string(), "object": string(), "message": string(),
        })),
        "TraceNode": object(&["id", "kind", "label", "data", "flagged", "rules",
                              "techniques"], json!({
            "id": string(),
            "kind": {"type": "string", "description":
                "process, file, endpoint, act, or group (collapsed siblings)"},
            "label": string(), "data": {"description": "kind-specific details"},
            "flagged": {"type": "boolean"}, "rules": array(string()),
            "techniques": array(string()), "time": time(), "host": string(),
        })),
        "TraceEdge": object(&["source", "target", "kind", "time", "count"], json!({
            "id": string(), "source": string(), "target": string(), "kind": string(),
            "time": time(), "count": int(),
        })),
        "Trace": object(&["nodes", "edges"], json!({
            "nodes": array(r("TraceNode")), "edges": array(r("TraceEdge")),
            "aggregated": object(&["original_nodes", "original_edges", "hidden_nodes"],
                json!({"original_nodes": int(), "original_edges": int(),
                       "hidden_nodes": int()})),
        })),
        "Event": {
            "type": "object", "required": ["time", "kind", "host", "process"],
            "description": "One event in the agent's JSON-lines form (see the event contract).",
            "properties": {"time": time(), "kind": string(),
                "host": object(&["name", "id"], json!({"name": string(), "id": string()})),
                "process": {"type": "object"}},
        },
        "ProcessBrief": object(&["id", "pid", "exe", "argv", "host"], json!({
            "id": string(), "pid": int(), "exe": string(), "argv": array(string()),
            "host": string(), "start_time": time(),
        })),
        "ProcessDetail": object(&["process", "host", "ancestors", "children", "flows",
                                  "files"], json!({
            "process": {"type": "object", "description": "The process in the agent's form"},
            "host": object(&["name", "id"], json!({"name": string(), "id": string()})),
            "start_time": time(), "exit_time": time(),
            "exit": {"type": "object", "properties": {
                "code": nullable(json!({"type": "integer"})),
                "signal": nullable(json!({"type": "integer"}))}},
            "ancestors": array(r("ProcessBrief")), "children": array(r("ProcessBrief")),
            "flows": array(object(&["direction", "protocol", "local", "remote", "time",
                                    "peer"], json!({
                "direction": {"type": "string", "enum": ["outbound", "inbound", "listen"]},
                "protocol": string(), "local": endpoint.clone(), "remote": endpoint,
                "time": time(),
                "peer": {"allOf": [r("ProcessBrief")], "nullable": true},
            }))),
            "files": array(object(&["path", "kind", "write", "sensitive", "time"], json!({
                "path": string(), "kind": string(), "write": {"type": "boolean"},
                "sensitive": {"type": "boolean"}, "time": time(),
            }))),
        })),
        "Health": object(&["status", "agents", "events_seen", "events_lost", "incidents",
                           "uptime_seconds"], json!({
            "status": string(),
            "agents": array(object(&["host", "host_id", "state", "last_event",
                                     "events_seen", "events_lost"], json!({
                "host": string(), "host_id": string(), "state": string(),
                "last_event": nullable(time()), "events_seen": int(),
                "events_lost": counters.clone(),
            }))),
            "events_seen": int(), "events_lost": counters, "incidents": int(),
            "uptime_seconds": int(),
        })),
        "RuleInfo": object(&["id", "title", "severity"], json!({
            "id": string(), "title": string(), "description": string(),
            "severity": r("Severity"), "techniques": array(string()), "tactic": string(),
            "kinds": array(string()), "origin": string(),
        })),
        "PolicyInfo": object(&["id", "name", "mode", "deviations"], json!({
            "id": string(), "name": string(), "mode": string(), "description": string(),
            "deviations": int(),
        })),
    })
}

/// The document served at `/api/v1/openapi.json`.
pub fn document() -> Value {
    let limit = |max: u32, def: u32| json!({"type": "integer", "minimum": 1, "maximum": max, "default": def});
    let text = json!({"type": "string", "maxLength": 1024});
    let max_nodes = query(
        "max_nodes",
        json!({"type": "integer", "minimum": 10, "maximum": 20000, "default": 400}),
        "Node budget; larger graphs are aggregated on the server (group nodes).",
    );
    let collapse = query(
        "collapse",
        json!({"type": "string", "enum": ["true", "false"], "default": "true"}),
        "Group runs of 7+ similar unflagged siblings even within the node budget.",
    );
    let paths = json!({
        "/": {"get": {"summary": "The web UI (or a page saying how to build it)",
            "responses": {"200": {"description": "HTML",
                "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (counters from health)",
            "responses": {
                "200": {"description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
                "401": error("Missing or invalid bearer token")}}},
        "/api/v1/openapi.json": {"get": {"summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3 document",
                "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/api/v1/incidents": get("List incidents, newest first", vec![
            query("limit", limit(1000, 100), "Page size"),
            query("offset", json!({"type": "integer", "minimum": 0, "maximum": 1000000}),
                  "Items to skip"),
            query("severity", r("Severity"), "At least this severity"),
            query("min_score", json!({"type": "number"}), "At least this score"),
            query("host", text.clone(), "Host name"),
            query("technique", text.clone(),
                  "ATT&CK technique (T1059 also matches T1059.004)"),
            query("q", text.clone(), "Text in title, id, root exe, hosts, techniques"),
        ], json_response("A page of incidents", r("IncidentPage")), &[]),
        "/api/v1/incidents/{id}": get("One incident with its flags and trace", vec![
            id_param("Incident id"), max_nodes.clone(), collapse.clone(),
        ], json_response("The incident", r("IncidentDetail")), &[("404", "No such incident")]),
        "/api/v1/events": get("Search events (agent JSON form), oldest first", vec![
            query("kind", text.clone(), "Event kinds, comma-separated (e.g. process.exec)"),
            query("q", text.clone(), "Text in argv, exe or paths"),
            query("since", time(), "Not before (RFC 3339)"),
            query("until", time(), "Not after (RFC 3339)"),
            query("host", text.clone(), "Host name or id"),
            query("container", text.clone(), "Container id (or a prefix of 4+ chars)"),
            query("process", text.clone(), "Process id"),
            query("limit", limit(10000, 100), "Most events returned"),
        ], json_response("Events", array(r("Event"))), &[]),
        "/api/v1/processes/{id}": get(
            "A process with its ancestors, children, flows (with peers) and files",
            vec![id_param("Process id, or the trace node id of one of its images (`proc:<process id>@<start>`)")],
            json_response("The process", r("ProcessDetail")), &[("404", "No such process")]),
        "/api/v1/processes/{id}/trace": get("Causal trace from a process", vec![
            id_param("Process id, or the trace node id of one of its images (`proc:<process id>@<start>`): the trace then starts at that image"),
            query("direction", json!({"type": "string", "enum": ["backward", "forward"],
                                      "default": "backward"}),
                  "backward: what caused it; forward: what it caused"),
            query("depth", json!({"type": "integer", "minimum": 1, "maximum": 64,
                                  "default": 3}), "Hops"),
            max_nodes, collapse,
        ], json_response("The trace", r("Trace")), &[("404", "No such process")]),
        "/api/v1/health": get("Agent state and event counters", vec![],
            json_response("Health", r("Health")), &[]),
        "/api/v1/rules": get("Loaded detection rules", vec![],
            json_response("Rules", array(r("RuleInfo"))), &[]),
        "/api/v1/policies": get("Loaded policies and their deviations", vec![],
            json_response("Policies", array(r("PolicyInfo"))), &[]),
        "/api/v1/stream": {"get": {
            "summary": "Live incidents (server-sent events: ready, incident, lagged)",
            "description": "Requires Accept: text/event-stream. Each `incident` event's data is {\"change\": \"new\"|\"updated\", \"incident\": IncidentSummary}.",
            "responses": {
                "200": {"description": "An event stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                "401": error("Missing or invalid bearer token"),
                "406": error("The client did not accept text/event-stream"),
            }}},
    });
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Causeway API", "version": "1",
            "description": "Incidents, causal traces, events, processes and health. \
                Bearer token required except on a token-free loopback listener."},
        "servers": [{"url": "/"}],
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
        "paths": paths,
    })
}
