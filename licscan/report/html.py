"""``licscan audit --format html``: one self-contained page for legal review.

No external resource of any kind: styles are inline, there is no script, no image, no font; a Content-Security-
Policy of ``default-src 'none'`` makes the browser refuse anything else. Sections: summary, findings (each with its
quoted clause, the date of the EULA text, the evidence chain and the remediation), waivers (reason, approver,
expiry), NVIDIA components (versions, licences, where, evidence), other GPU components, device code per file
(architectures by toolkit), dependencies on NVIDIA libraries, what could not be read. Deterministic: the date shown
is SOURCE_DATE_EPOCH's when set.
"""

from __future__ import annotations

from collections.abc import Sequence

from licscan import __version__
from licscan.escape import html as html_text
from licscan.findings import Finding, Verdict
from licscan.model import GPU_LAYER_KINDS, Component, Inventory
from licscan.report._shared import (
    active,
    by_severity,
    counts,
    device_code_by_file,
    generated_at,
    is_nvidia,
    naming_note,
    rel,
    version_label,
    waived,
)

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dde5; --bg:#ffffff; --soft:#f5f7fa;
        --error:#b42318; --warning:#b54708; --note:#175cd3; --ok:#067647; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); }
main { max-width: 1200px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 0; }
.muted { color: var(--muted); }
code, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
code { background: var(--soft); padding: 1px 4px; border-radius: 3px; overflow-wrap: break-word; }
.status { display: inline-block; padding: 4px 12px; border-radius: 999px; font-weight: 600; color: #fff; }
.status.fail { background: var(--error); } .status.warn { background: var(--warning); }
.status.pass { background: var(--ok); }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 16px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 130px; }
.card b { display: block; font-size: 24px; }
.card.error b { color: var(--error); } .card.warning b { color: var(--warning); } .card.note b { color: var(--note); }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); padding: 6px 8px; }
th { background: var(--soft); font-weight: 600; }
td { overflow-wrap: break-word; }
td:nth-child(-n+5) { min-width: 6em; }
.finding { border: 1px solid var(--line); border-left: 6px solid var(--muted); border-radius: 6px;
           padding: 12px 16px; margin: 14px 0; page-break-inside: avoid; }
.finding.error { border-left-color: var(--error); } .finding.warning { border-left-color: var(--warning); }
.finding.note { border-left-color: var(--note); } .finding.waived { opacity: .8; border-left-style: dashed; }
.sev { display: inline-block; font-size: 12px; font-weight: 700; letter-spacing: .04em; padding: 1px 8px;
       border-radius: 4px; color: #fff; margin-right: 6px; }
.sev.error { background: var(--error); } .sev.warning { background: var(--warning); }
.sev.note { background: var(--note); } .sev.waived { background: var(--muted); }
blockquote { margin: 10px 0; padding: 8px 14px; background: var(--soft); border-left: 4px solid #98a2b3;
             font-family: Georgia, "DejaVu Serif", serif; }
blockquote footer { font-family: inherit; font-size: 13px; color: var(--muted); margin-top: 4px; }
dl { display: grid; grid-template-columns: 160px 1fr; gap: 4px 12px; margin: 8px 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
ol.evidence { margin: 4px 0; padding-left: 22px; font-size: 13px; }
ol.evidence li { margin: 2px 0; overflow-wrap: anywhere; }
nav ol { columns: 2; margin: 8px 0; }
footer.page { margin-top: 48px; font-size: 13px; color: var(--muted); }
@media print { main { max-width: none; padding: 0; } h2 { page-break-after: avoid; } }
"""


def _e(text: object) -> str:
    """Untrusted text as HTML (licscan.escape.html: controls and bidirectional overrides visible, then entities)."""
    return html_text("" if text is None else text)


def _code(text: object) -> str:
    return f"<code>{_e(text)}</code>"


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _finding(f: Finding, number: int) -> str:
    sev = f.severity.value
    is_waived = bool(f.waived)
    cls = f"finding {sev}" + (" waived" if is_waived else "")
    badge = f'<span class="sev {sev}">{_e(sev.upper())}</span>'
    if is_waived:
        badge += '<span class="sev waived">WAIVED</span>'
    verdict = "" if f.verdict is Verdict.VIOLATION else f" <em>({_e(f.verdict.value)})</em>"
    parts = [f'<article class="{cls}" id="finding-{_e(f.fingerprint)}">',
             f"<h3>{badge} {_e(f.title or f.rule)}{verdict}</h3>",
             "<dl>",
             f"<dt>Rule</dt><dd>{_code(f.rule)}</dd>",
             f"<dt>File</dt><dd>{_code(f.path)}</dd>"]
    if f.component:
        parts.append(f"<dt>Component</dt><dd>{_code(f.component)}</dd>")
    parts.append(f"<dt>Finding</dt><dd>{_e(f.message)}</dd>")
    parts.append(f"<dt>Fingerprint</dt><dd>{_code(f.fingerprint)} <span class=\"muted\">(#{number})</span></dd>")
    parts.append("</dl>")
    clause = f.clause
    if clause:
        url = f" — {_e(clause.url)}" if clause.url else ""
        parts.append(f"<blockquote><p>“{_e(' '.join(clause.text.split()))}”</p>"
                     f"<footer>{_e(clause.document)}, section {_e(clause.section)}; "
                     f"EULA text dated <b>{_e(clause.date)}</b>{_e(clause.stand_in)}{url}</footer></blockquote>")
    evidence = f.evidence
    if evidence:
        parts.append(f"<div><b>Evidence chain</b> ({len(evidence)})<ol class=\"evidence\">"
                     + "".join(f"<li>{_e(e)}</li>" for e in evidence) + "</ol></div>")
    if f.waiver is not None:
        w = f.waiver
        parts.append(f"<p><b>Waived:</b> {_e(w.reason)}; expires {_e(w.expires or 'never')}"
                     + (f"; approved by {_e(w.approver)}" if w.approver else "") + "</p>")
    if f.remediation:
        parts.append(f"<p><b>Remediation:</b> {_e(' '.join(f.remediation.split()))}</p>")
    if f.references:
        parts.append("<p class=\"muted\">References: " + "; ".join(_e(r) for r in f.references) + "</p>")
    parts.append("</article>")
    return "".join(parts)


def _component_rows(components: Sequence[Component]) -> list[list[str]]:
    rows = []
    for c in components:
        evidence = "<ol class=\"evidence\">" + "".join(f"<li>{_e(e)}</li>" for e in c.evidence) + "</ol>"
        kind = _e(c.kind.value) + (f"<br><span class=\"muted\">{_e(c.confidence.value)} confidence</span>"
                                   if c.kind in GPU_LAYER_KINDS and c.confidence is not None else "")
        kind += f"<br><span class=\"muted\">{_e(naming_note(c))}</span>" if naming_note(c) else ""
        text_date = c.license_text.date if c.license_text is not None else None
        rows.append([f"<b>{_e(c.name)}</b>", _e(c.vendor), kind, _e(version_label(c, "unknown")),
                     _e(c.license or "unknown") + (f"<br><span class=\"muted\">EULA text {_e(text_date)}"
                                                   "</span>" if text_date else ""),
                     "<br>".join(_code(p) for p in c.paths), evidence])
    return rows


def _status(inventory: Inventory, live: list[Finding], c: dict[str, int]) -> str:
    if c["error"]:
        status = '<span class="status fail">Findings at error level</span>'
    elif live:
        status = '<span class="status warn">Findings below error level</span>'
    else:
        status = '<span class="status pass">No open findings</span>'
    if not inventory.complete:
        status += ' <span class="status fail">Scan incomplete</span>'
    return status


def _header(inventory: Inventory, findings: list[Finding], live: list[Finding], done: list[Finding]) -> list[str]:
    c = counts(findings)
    s = inventory.summary
    when = generated_at().strftime("%Y-%m-%d %H:%M UTC")
    inputs = ", ".join(_code(rel(p) or p) for p in inventory.inputs)
    return [
        "<header>",
        "<h1>licscan licence review</h1>",
        f"<p class=\"muted\">{inputs} — {s.files} files, {s.bytes:,} bytes — licscan {_e(__version__)} — "
        f"generated {_e(when)}</p>",
        f"<p>{_status(inventory, live, c)}</p>",
        "<div class=\"cards\">"
        + "".join(f"<div class=\"card {k}\"><b>{n}</b>{_e(k)}</div>" for k, n in c.items())
        + f"<div class=\"card\"><b>{len(done)}</b>waived</div>"
        + f"<div class=\"card\"><b>{len(inventory.components)}</b>components</div>"
        + f"<div class=\"card\"><b>{len(inventory.device_code)}</b>device-code images</div></div>",
        "<p class=\"muted\">An engineering reading of the licence texts, not legal advice. Each finding quotes the "
        "clause it rests on, the date of the EULA text the quote is from, and the facts found in the files.</p>",
        "<nav><b>Contents</b><ol><li><a href=\"#findings\">Findings</a></li><li><a href=\"#waivers\">Waivers</a></li>"
        "<li><a href=\"#nvidia\">NVIDIA components</a></li><li><a href=\"#other\">Other GPU components</a></li>"
        "<li><a href=\"#device-code\">Device code per file</a></li><li><a href=\"#dependencies\">Dependencies</a></li>"
        "<li><a href=\"#completeness\">Completeness</a></li></ol></nav>",
        "</header>",
    ]


def _findings_section(live: list[Finding], done: list[Finding]) -> list[str]:
    body = [f"<section id=\"findings\"><h2>Findings ({len(live)} open)</h2>",
            "".join(_finding(f, i) for i, f in enumerate(live, 1)) if live else "<p>No open findings.</p>",
            "</section>",
            f"<section id=\"waivers\"><h2>Waivers ({len(done)})</h2>"]
    if done:
        body.append(_table(["Rule", "File", "Reason", "Approver", "Expires", "Declared at"],
                           [[_code(f.rule), _code(f.path), _e(f.waiver.reason if f.waiver else None),
                             _e((f.waiver.approver if f.waiver else None) or "—"),
                             _e((f.waiver.expires if f.waiver else None) or "never"),
                             _code(rel(f.waiver.source if f.waiver else None) or "")] for f in done]))
        body.append("".join(_finding(f, i) for i, f in enumerate(done, len(live) + 1)))
    else:
        body.append("<p>No finding is waived.</p>")
    body.append("</section>")
    return body


def _components_sections(inventory: Inventory) -> list[str]:
    nvidia = [x for x in inventory.components if is_nvidia(x)]
    other = [x for x in inventory.components if not is_nvidia(x)]
    headers = ["Name", "Vendor", "Kind", "Version", "Licence", "Where", "Evidence"]
    return [f"<section id=\"nvidia\"><h2>NVIDIA components ({len(nvidia)})</h2>",
            _table(headers, _component_rows(nvidia)) if nvidia else "<p>None found.</p>",
            "</section>",
            f"<section id=\"other\"><h2>Other GPU components ({len(other)})</h2>",
            _table(headers, _component_rows(other)) if other else "<p>None found.</p>",
            "</section>"]


def _device_section(inventory: Inventory) -> list[str]:
    device = device_code_by_file(inventory)
    body = [f"<section id=\"device-code\"><h2>Device code per file ({len(device)} files, "
            f"{len(inventory.device_code)} images)</h2>"]
    if device:
        rows = []
        for path, toolkits in device.items():
            for i, row in enumerate(toolkits):
                arches = "<br>".join(f"<b>{_e(kind)}</b> {_e(' '.join(a))}" for kind, a in row.kinds)
                rows.append([_code(path) if i == 0 else "", _e(row.toolkit), arches, str(row.images)])
        body.append(_table(["File", "Toolkit (CUDA)", "Architectures", "Images"], rows))
    else:
        body.append("<p>No NVIDIA device code found.</p>")
    body.append("</section>")
    return body


def _dependencies_section(inventory: Inventory) -> list[str]:
    body = [f"<section id=\"dependencies\"><h2>Dependencies on NVIDIA libraries ({len(inventory.dependencies)})"
            "</h2>"]
    if inventory.dependencies:
        body.append(_table(["File", "Needs (DT_NEEDED)", "Component", "Shipped in the input"],
                           [[_code(d.path), _code(d.needs), _e(f"{d.vendor} {d.component}"),
                             "<br>".join(_code(x) for x in d.shipped) or "no"] for d in inventory.dependencies]))
    else:
        body.append("<p>None.</p>")
    if inventory.distributions:
        body.append("<h3>Packages</h3>")
        body.append(_table(["Package", "Ecosystem", "Version", "Declared licence", "Path"],
                           [[_e(d.name), _e(d.ecosystem.value), _e(d.version), _e(d.license_declared or "—"),
                             _code(d.vpath)] for d in inventory.distributions]))
    body.append("</section>")
    return body


def _completeness_section(inventory: Inventory) -> list[str]:
    body = ["<section id=\"completeness\"><h2>Completeness</h2>"]
    if inventory.diagnostics:
        body.append(f"<p><b>Scan incomplete:</b> {len(inventory.diagnostics)} inputs or parts could not be read; "
                    "findings may be missing for them.</p>")
        body.append(_table(["Kind", "Path", "Message"], [[_e(d.kind.value), _code(d.path), _e(d.message)]
                                                        for d in inventory.diagnostics]))
    else:
        body.append(f"<p>Every input was read completely ({inventory.summary.files} files).</p>")
    if inventory.special_files:
        body.append(_table(["Special file", "Kind", "Target", "Note"],
                           [[_code(x.vpath), _e(x.kind.value), _e(x.target or ""), _e(x.note or "")]
                            for x in inventory.special_files]))
    body.append("</section>")
    return body


def render(inventory: Inventory, findings: list[Finding] | None = None) -> str:
    findings = findings or []
    live = by_severity(active(findings))
    done = waived(findings)
    body = (_header(inventory, findings, live, done) + _findings_section(live, done)
            + _components_sections(inventory) + _device_section(inventory) + _dependencies_section(inventory)
            + _completeness_section(inventory))
    body.append(f"<footer class=\"page\">licscan {_e(__version__)}. Fingerprints are stable across runs; waive a "
                "reviewed finding with <code>licscan waive FINGERPRINT --reason …</code>.</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>licscan licence review: {_e(', '.join(rel(p) or p for p in inventory.inputs))}</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n")
