//! Renders a role's resources for one host.
//!
//! Rendering happens twice. Before facts are gathered, resources are rendered leniently with no
//! `facts` in the context, only to learn which fact queries they need (paths, package and
//! service names never depend on facts). After facts, they are rendered strictly with `facts`,
//! and any undefined value is an error that names the role and resource.
//!
//! Files from `templates/` are pulled in with `{% include 'NAME' %}`, which sees the same context.

use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::Value as Json;

use super::RoleSet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("role {role}, resource {resource:?}: {message}")]
#[diagnostic(code(kprov::roles::render))]
pub struct RenderError {
    pub role: String,
    pub resource: String,
    pub message: String,
}

/// Which rendering pass: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Before facts: lenient, for fact queries only.
    Discover,
    /// With facts: strict, the real values.
    Final,
}

pub struct Renderer {
    discover: Environment<'static>,
    strict: Environment<'static>,
}

impl Renderer {
    pub fn new(roles: &RoleSet) -> Renderer {
        Renderer { discover: environment(roles, UndefinedBehavior::Chainable), strict: environment(roles, UndefinedBehavior::Strict) }
    }

    fn env(&self, pass: Pass) -> &Environment<'static> {
        match pass {
            Pass::Discover => &self.discover,
            Pass::Final => &self.strict,
        }
    }

    /// Render every string inside `value` as a template. `ctx` is a host's context (see
    /// `engine::context`): its parts shared by all hosts are reference-counted, so rendering
    /// costs the same whatever the number of hosts.
    pub fn render_value(&self, pass: Pass, value: &Json, ctx: &Value) -> Result<Json, String> {
        Ok(match value {
            // A string that is one expression and nothing else keeps the expression's type, so
            // a role can pass a list or a number (`ignore: "{{ cluster.preflight.ignore }}"`).
            Json::String(s) if is_single_expression(s) => {
                let expr = s.trim().trim_start_matches("{{").trim_end_matches("}}").trim();
                let compiled = self.env(pass).compile_expression(expr).map_err(describe)?;
                let v = compiled.eval(ctx.clone()).map_err(describe)?;
                if v.is_undefined() { Json::String(String::new()) } else { serde_json::to_value(&v).map_err(|e| e.to_string())? }
            }
            Json::String(s) if s.contains("{{") || s.contains("{%") => {
                let out = self.env(pass).render_str(s, ctx.clone()).map_err(describe)?;
                Json::String(out)
            }
            Json::Array(items) => Json::Array(items.iter().map(|v| self.render_value(pass, v, ctx)).collect::<Result<_, _>>()?),
            Json::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    // Keys are templates too (sysctl names rarely are, but labels may be).
                    let key = match self.render_value(pass, &Json::String(k.clone()), ctx)? {
                        Json::String(s) => s,
                        _ => k.clone(),
                    };
                    out.insert(key, self.render_value(pass, v, ctx)?);
                }
                Json::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Evaluate a `when` expression. In the discovery pass every resource counts as wanted, so
    /// its facts are gathered whichever way the condition later goes.
    pub fn when(&self, pass: Pass, expr: &str, ctx: &Value) -> Result<bool, String> {
        if pass == Pass::Discover {
            return Ok(true);
        }
        let compiled = self.strict.compile_expression(expr).map_err(describe)?;
        let v = compiled.eval(ctx.clone()).map_err(describe)?;
        Ok(v.is_true())
    }
}

/// Any serializable value as a template value (converted once; clones are reference-counted).
pub fn to_value<T: serde::Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

fn environment(roles: &RoleSet, undefined: UndefinedBehavior) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(undefined);
    // Rendered files keep their final newline, or every managed file would look changed.
    let syntax = minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).build().expect("default delimiters are valid");
    env.set_syntax(syntax);
    // `{{ value | q }}` quotes a value for the remote shell. Every inventory value that a role
    // splices into a command goes through it.
    env.add_filter("q", |value: String| -> Result<String, minijinja::Error> {
        crate::shell::quote(&value).map(|q| q.into_owned()).map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))
    });
    // `{{ value | yaml }}` writes a value into YAML as a JSON scalar (a JSON string is a valid
    // YAML double-quoted scalar), so a quote, a colon or a newline in an inventory value can
    // never change the document's structure. Every value a template puts into YAML goes
    // through it.
    env.add_filter("yaml", yaml_scalar);
    // `{{ value | yaml_block(indent) }}` writes a mapping or list as block YAML, every scalar
    // (and every key that is not a plain name) as a JSON scalar: the same guarantee for
    // structured settings (the kubelet's passthrough fields, extra arguments).
    env.add_filter("yaml_block", yaml_block);
    for (name, text) in &roles.templates {
        if let Err(e) = env.add_template_owned(name.clone(), text.clone()) {
            // A broken template is reported when it is used, with its name.
            tracing::warn!("template {name}: {e}");
        }
    }
    env
}

fn yaml_scalar(state: &minijinja::State, value: Value) -> Result<String, minijinja::Error> {
    if value.is_undefined() {
        // The discovery pass renders without facts and only wants fact queries.
        if state.undefined_behavior() != UndefinedBehavior::Strict {
            return Ok("\"\"".into());
        }
        return Err(minijinja::Error::new(minijinja::ErrorKind::UndefinedError, "`| yaml` of an undefined value"));
    }
    serde_json::to_string(&value).map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))
}

fn yaml_block(state: &minijinja::State, value: Value, indent: Option<usize>) -> Result<String, minijinja::Error> {
    if value.is_undefined() {
        if state.undefined_behavior() != UndefinedBehavior::Strict {
            return Ok(String::new());
        }
        return Err(minijinja::Error::new(minijinja::ErrorKind::UndefinedError, "`| yaml_block` of an undefined value"));
    }
    let json = serde_json::to_value(&value).map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(crate::kube_settings::block_yaml(&json, indent.unwrap_or(0)))
}

fn is_single_expression(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("{{") && t.ends_with("}}") && t.matches("{{").count() == 1 && t.matches("}}").count() == 1 && !t.contains("{%")
}

fn describe(e: minijinja::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_yaml_filter_keeps_hostile_values_inside_one_scalar() {
        let roles = RoleSet { roles: vec![], templates: Default::default() };
        let r = Renderer::new(&roles);
        let ctx = to_value(serde_json::json!({ "name": "a\"b\nc: d\n- e # f", "n": 3, "none": null }));
        let out = r.render_value(Pass::Final, &Json::String("x: {{ name | yaml }}\ny: {{ n | yaml }}\n".into()), &ctx).unwrap();
        assert_eq!(out, Json::String("x: \"a\\\"b\\nc: d\\n- e # f\"\ny: 3\n".into()));
        // Strict: an undefined value is an error, not an empty string in the config.
        let err = r.render_value(Pass::Final, &Json::String("x: {{ missing | yaml }}".into()), &ctx).unwrap_err();
        assert!(err.contains("undefined"), "{err}");
        assert!(r.render_value(Pass::Discover, &Json::String("x: {{ missing | yaml }}".into()), &ctx).is_ok());
    }
}
