//! Process-wide set-up: the miette report handler and tracing.

use std::io::IsTerminal;

use super::Globals;

pub fn install(g: &Globals) {
    let color = g.color(std::io::stderr().is_terminal());
    let _ = miette::set_hook(Box::new(move |_| {
        let theme = if color { miette::GraphicalTheme::unicode() } else { miette::GraphicalTheme::unicode_nocolor() };
        Box::new(miette::GraphicalReportHandler::new_themed(theme).with_context_lines(1))
    }));
    let level = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("KPROV_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("kprov={level}")));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(color).try_init();
}

/// Render a diagnostic the way the installed handler does, to a string.
pub fn render(d: &dyn miette::Diagnostic, color: bool) -> String {
    let theme = if color { miette::GraphicalTheme::unicode() } else { miette::GraphicalTheme::unicode_nocolor() };
    let mut out = String::new();
    let _ = miette::GraphicalReportHandler::new_themed(theme).with_context_lines(1).with_width(100).render_report(&mut out, d);
    out
}
