//! The JMAP request object and its processing rules (RFC 8620 §3), with
//! no I/O: parsing and validating a request body, the request-level
//! errors (§3.6.1, RFC 7807 problem details), result references (§3.7)
//! and the response object. Method execution lives in `methods/`.

use serde_json::{json, Map, Value};

/// Capability URIs Petrel knows (RFC 8620 §2, RFC 8621 §1.3).
pub const CORE: &str = "urn:ietf:params:jmap:core";
pub const MAIL: &str = "urn:ietf:params:jmap:mail";
pub const SUBMISSION: &str = "urn:ietf:params:jmap:submission";
pub const VACATION: &str = "urn:ietf:params:jmap:vacationresponse";
pub const QUOTA: &str = "urn:ietf:params:jmap:quota";
/// RFC 9007: read receipts (MDN/send, MDN/parse).
pub const MDN: &str = "urn:ietf:params:jmap:mdn";
pub const WEBSOCKET: &str = "urn:ietf:params:jmap:websocket";
pub const BLOB: &str = "urn:ietf:params:jmap:blob";
/// RFC 9670: Principal and ShareNotification.
pub const PRINCIPALS: &str = "urn:ietf:params:jmap:principals";
/// RFC 9670 §1.5.2: an account capability only (who owns the account).
pub const PRINCIPALS_OWNER: &str = "urn:ietf:params:jmap:principals:owner";
/// RFC 9661: SieveScript.
pub const SIEVE: &str = "urn:ietf:params:jmap:sieve";
pub const KNOWN_CAPABILITIES: &[&str] = &[
    CORE, MAIL, SUBMISSION, VACATION, QUOTA, WEBSOCKET, BLOB, MDN, PRINCIPALS, SIEVE,
];

/// Limits advertised in the core capability and enforced (§2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_size_request: usize,
    pub max_calls_in_request: usize,
    pub max_objects_in_get: usize,
    pub max_concurrent_requests: usize,
}

/// One method call: `[name, arguments, method call id]` (§3.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub name: String,
    pub args: Map<String, Value>,
    pub call_id: String,
}

/// A parsed request (§3.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub using: Vec<String>,
    pub calls: Vec<Invocation>,
    pub created_ids: Option<Map<String, Value>>,
}

/// A request-level error (§3.6.1): an HTTP status and a problem document.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: u16,
    pub kind: &'static str,
    pub detail: String,
    /// For `limit`: which limit (§3.6.1).
    pub limit: Option<&'static str>,
}

impl Problem {
    fn new(kind: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status: 400,
            kind,
            detail: detail.into(),
            limit: None,
        }
    }

    pub fn limit(limit: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status: 400,
            kind: "urn:ietf:params:jmap:error:limit",
            detail: detail.into(),
            limit: Some(limit),
        }
    }

    pub fn not_json(detail: impl Into<String>) -> Problem {
        Problem::new("urn:ietf:params:jmap:error:notJSON", detail)
    }

    pub fn not_request(detail: impl Into<String>) -> Problem {
        Problem::new("urn:ietf:params:jmap:error:notRequest", detail)
    }

    /// The store could not answer: a temporary failure (503).
    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem {
            status: 503,
            kind: "about:blank",
            detail: detail.into(),
            limit: None,
        }
    }

    /// The RFC 7807 document.
    pub fn body(&self) -> Value {
        let mut v = json!({ "type": self.kind, "status": self.status, "detail": self.detail });
        if let Some(l) = self.limit {
            v["limit"] = json!(l);
        }
        v
    }
}

/// A method-level error (§3.6.2): the `error` response's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodError {
    pub kind: &'static str,
    pub description: Option<String>,
}

impl MethodError {
    pub fn new(kind: &'static str) -> MethodError {
        MethodError {
            kind,
            description: None,
        }
    }

    pub fn with(kind: &'static str, description: impl Into<String>) -> MethodError {
        MethodError {
            kind,
            description: Some(description.into()),
        }
    }

    pub fn invalid_arguments(description: impl Into<String>) -> MethodError {
        MethodError::with("invalidArguments", description)
    }

    pub fn args(&self) -> Value {
        let mut v = json!({ "type": self.kind });
        if let Some(d) = &self.description {
            v["description"] = json!(d);
        }
        v
    }
}

/// Parses and validates a request body (§3.3, §3.6.1).
pub fn parse(body: &[u8], limits: &Limits) -> Result<Request, Problem> {
    if body.len() > limits.max_size_request {
        return Err(Problem::limit(
            "maxSizeRequest",
            format!("the request is over {} bytes", limits.max_size_request),
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            "urn:ietf:params:jmap:error:notJSON",
            format!("the body is not JSON (RFC 8259): {e}"),
        )
    })?;
    let not_request = |why: &str| {
        Problem::new(
            "urn:ietf:params:jmap:error:notRequest",
            format!("not a JMAP Request object: {why}"),
        )
    };
    let Value::Object(mut obj) = value else {
        return Err(not_request("the body is not an object"));
    };
    let using: Vec<String> = match obj.remove("using") {
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(not_request("`using` holds something other than strings")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(not_request("`using` is missing or not an array")),
    };
    let calls = match obj.remove("methodCalls") {
        Some(Value::Array(a)) => a,
        _ => return Err(not_request("`methodCalls` is missing or not an array")),
    };
    let created_ids = match obj.remove("createdIds") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(not_request("`createdIds` is not an object")),
    };
    if let Some(unknown) = using
        .iter()
        .find(|c| !KNOWN_CAPABILITIES.contains(&c.as_str()))
    {
        return Err(Problem::new(
            "urn:ietf:params:jmap:error:unknownCapability",
            format!("this server does not support the capability `{unknown}`"),
        ));
    }
    if calls.len() > limits.max_calls_in_request {
        return Err(Problem::limit(
            "maxCallsInRequest",
            format!("more than {} method calls", limits.max_calls_in_request),
        ));
    }
    let calls = calls
        .into_iter()
        .map(|c| match c {
            Value::Array(mut parts) if parts.len() == 3 => {
                let id = parts.pop();
                let args = parts.pop();
                let name = parts.pop();
                match (name, args, id) {
                    (
                        Some(Value::String(name)),
                        Some(Value::Object(args)),
                        Some(Value::String(call_id)),
                    ) => Ok(Invocation {
                        name,
                        args,
                        call_id,
                    }),
                    _ => Err(not_request("a method call is not [String, Object, String]")),
                }
            }
            _ => Err(not_request("a method call is not a 3-element array")),
        })
        .collect::<Result<_, _>>()?;
    Ok(Request {
        using,
        calls,
        created_ids,
    })
}

/// Resolves the `#name` result references of `args` against the
/// responses so far (§3.7). Both `name` and `#name` present is
/// `invalidArguments`; a reference that does not resolve is
/// `invalidResultReference`.
pub fn resolve_references(
    args: Map<String, Value>,
    responses: &[(String, Value, String)],
) -> Result<Map<String, Value>, MethodError> {
    let mut out = Map::with_capacity(args.len());
    let mut refs = Vec::new();
    for (k, v) in args {
        match k.strip_prefix('#') {
            Some(name) => refs.push((name.to_string(), v)),
            None => {
                out.insert(k, v);
            }
        }
    }
    for (name, reference) in refs {
        if out.contains_key(&name) {
            return Err(MethodError::invalid_arguments(format!(
                "both `{name}` and `#{name}` given"
            )));
        }
        let bad = |why: String| MethodError::with("invalidResultReference", why);
        let (Some(result_of), Some(ref_name), Some(path)) = (
            reference.get("resultOf").and_then(Value::as_str),
            reference.get("name").and_then(Value::as_str),
            reference.get("path").and_then(Value::as_str),
        ) else {
            return Err(bad(format!(
                "`#{name}` is not a ResultReference (resultOf, name, path)"
            )));
        };
        let Some((_, result, _)) = responses
            .iter()
            .find(|(n, _, id)| id == result_of && n == ref_name)
        else {
            return Err(bad(format!(
                "no earlier `{ref_name}` response with call id `{result_of}`"
            )));
        };
        let value = pointer(result, path).ok_or_else(|| {
            bad(format!(
                "`{path}` does not resolve in the `{ref_name}` response"
            ))
        })?;
        out.insert(name, value);
    }
    Ok(out)
}

/// A JSON Pointer (RFC 6901) with JMAP's `*` (§3.7): at an array, `*`
/// maps the rest of the path over every element, flattening arrays.
pub fn pointer(value: &Value, path: &str) -> Option<Value> {
    if path.is_empty() {
        return Some(value.clone());
    }
    let rest = path.strip_prefix('/')?;
    let (token, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let token = token.replace("~1", "/").replace("~0", "~");
    match value {
        Value::Array(items) if token == "*" => {
            let mut out = Vec::new();
            for item in items {
                match pointer(item, tail)? {
                    Value::Array(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            Some(Value::Array(out))
        }
        Value::Array(items) => {
            let i: usize = token.parse().ok()?;
            pointer(items.get(i)?, tail)
        }
        Value::Object(map) => pointer(map.get(&token)?, tail),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_size_request: 1000,
        max_calls_in_request: 2,
        max_objects_in_get: 10,
        max_concurrent_requests: 2,
    };

    fn kind(body: &str) -> &'static str {
        parse(body.as_bytes(), &LIMITS).unwrap_err().kind
    }

    #[test]
    fn request_level_errors() {
        assert_eq!(kind("{"), "urn:ietf:params:jmap:error:notJSON");
        assert_eq!(kind("[]"), "urn:ietf:params:jmap:error:notRequest");
        assert_eq!(
            kind(r#"{"using":[]}"#),
            "urn:ietf:params:jmap:error:notRequest"
        );
        assert_eq!(
            kind(r#"{"using":[],"methodCalls":[["a",{},1]]}"#),
            "urn:ietf:params:jmap:error:notRequest"
        );
        assert_eq!(
            kind(r#"{"using":["urn:x"],"methodCalls":[]}"#),
            "urn:ietf:params:jmap:error:unknownCapability"
        );
        let too_many = r#"{"using":[],"methodCalls":[["a",{},"1"],["a",{},"2"],["a",{},"3"]]}"#;
        let p = parse(too_many.as_bytes(), &LIMITS).unwrap_err();
        assert_eq!(p.limit, Some("maxCallsInRequest"));
        let big = format!(
            r#"{{"using":[],"methodCalls":[],"x":"{}"}}"#,
            "a".repeat(2000)
        );
        assert_eq!(
            parse(big.as_bytes(), &LIMITS).unwrap_err().limit,
            Some("maxSizeRequest")
        );
        let ok = parse(
            br#"{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"a":1},"c1"]]}"#,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(ok.calls[0].name, "Core/echo");
        assert_eq!(ok.calls[0].call_id, "c1");
    }

    #[test]
    fn result_references() {
        let responses = vec![(
            "Email/query".to_string(),
            json!({"ids": ["e1", "e2"], "list": [{"threadId": "t1", "emailIds": ["e1"]}, {"threadId": "t2", "emailIds": ["e2", "e3"]}]}),
            "c0".to_string(),
        )];
        let args = |v: Value| v.as_object().unwrap().clone();
        let out = resolve_references(
            args(json!({"#ids": {"resultOf": "c0", "name": "Email/query", "path": "/ids"}})),
            &responses,
        )
        .unwrap();
        assert_eq!(out["ids"], json!(["e1", "e2"]));
        // `*` maps over arrays and flattens.
        let out = resolve_references(
            args(json!({"#ids": {"resultOf": "c0", "name": "Email/query", "path": "/list/*/emailIds"}})),
            &responses,
        )
        .unwrap();
        assert_eq!(out["ids"], json!(["e1", "e2", "e3"]));
        let err = |v| resolve_references(args(v), &responses).unwrap_err().kind;
        assert_eq!(
            err(json!({"#ids": {"resultOf": "c9", "name": "Email/query", "path": "/ids"}})),
            "invalidResultReference"
        );
        assert_eq!(
            err(json!({"#ids": {"resultOf": "c0", "name": "Email/get", "path": "/ids"}})),
            "invalidResultReference"
        );
        assert_eq!(
            err(json!({"#ids": {"resultOf": "c0", "name": "Email/query", "path": "/nope"}})),
            "invalidResultReference"
        );
        assert_eq!(
            err(
                json!({"ids": [], "#ids": {"resultOf": "c0", "name": "Email/query", "path": "/ids"}})
            ),
            "invalidArguments"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_cleanly(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = parse(&data, &LIMITS);
        }

        #[test]
        fn well_formed_requests_parse(
            names in proptest::collection::vec("[A-Za-z]{1,8}/[a-z]{1,8}", 0..3),
            arg in "[a-z]{1,6}",
            n in 0i64..1000,
        ) {
            let calls: Vec<Value> = names
                .iter()
                .enumerate()
                .map(|(i, name)| json!([name, {arg.clone(): n}, format!("c{i}")]))
                .collect();
            let body = json!({"using": [CORE], "methodCalls": calls}).to_string();
            let req = parse(body.as_bytes(), &LIMITS).unwrap();
            proptest::prop_assert_eq!(req.calls.len(), names.len());
            for (i, c) in req.calls.iter().enumerate() {
                proptest::prop_assert_eq!(&c.name, &names[i]);
                proptest::prop_assert_eq!(&c.args[&arg], &json!(n));
            }
        }
    }

    #[test]
    fn pointers_escape() {
        let v = json!({"a/b": {"m~n": 5}});
        assert_eq!(pointer(&v, "/a~1b/m~0n"), Some(json!(5)));
        assert_eq!(pointer(&v, ""), Some(v.clone()));
        assert_eq!(pointer(&v, "nope"), None);
    }
}
