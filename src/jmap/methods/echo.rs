//! Core/echo (RFC 8620 §4): the arguments come back unchanged.

use serde_json::{Map, Value};

pub fn echo(args: Map<String, Value>) -> Value {
    Value::Object(args)
}
