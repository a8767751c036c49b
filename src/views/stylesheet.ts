/** The one stylesheet, served by Tessera at /assets/tessera.css (no external assets anywhere). */
export const STYLESHEET = `
:root { --fg: #1d2330; --muted: #5b6475; --line: #d8dde6; --bg: #f5f7fa; --accent: #1f5fbf; --accent-dark: #174a96; --danger: #b3261e; --ok: #1e7b34; }
* { box-sizing: border-box; }
html { font-size: 16px; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); line-height: 1.5; }
.bar { background: #fff; border-bottom: 1px solid var(--line); padding: .75rem 1.25rem; }
.brand { font-weight: 700; letter-spacing: .02em; color: var(--fg); text-decoration: none; display: inline-flex; align-items: center; gap: .5rem; }
.brand .logo { height: 28px; width: auto; max-width: 10rem; }
ul.ways { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; }
.foot { max-width: 60rem; margin: 0 auto 2rem; padding: 0 1.25rem; text-align: center; font-size: .9rem; color: var(--muted); }
.card { max-width: 32rem; margin: 2rem auto; background: #fff; border: 1px solid var(--line); border-radius: .5rem; padding: 1.5rem; }
.card.wide { max-width: 60rem; }
h1 { font-size: 1.4rem; margin: 0 0 .75rem; }
p { margin: .5rem 0 1rem; }
.muted { color: var(--muted); font-size: .95rem; }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
input[type=text], input[type=password], input[type=email], select { width: 100%; font: inherit; padding: .6rem .7rem; border: 1px solid #aab3c2; border-radius: .35rem; background: #fff; }
input:focus, button:focus, select:focus { outline: 3px solid #9cc0f5; outline-offset: 1px; }
input.code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 1.4rem; letter-spacing: .15em; text-transform: uppercase; text-align: center; }
.actions { display: flex; gap: .75rem; flex-wrap: wrap; margin-top: 1.25rem; }
button { font: inherit; font-weight: 600; padding: .6rem 1.1rem; border-radius: .35rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button:hover { background: var(--accent-dark); }
button.secondary { background: #fff; color: var(--fg); border-color: #aab3c2; }
button.danger { background: var(--danger); border-color: var(--danger); }
.error { color: var(--danger); background: #fdecea; border: 1px solid #f5c2bd; border-radius: .35rem; padding: .6rem .8rem; }
.notice { color: var(--ok); background: #e8f5ec; border: 1px solid #b9e0c4; border-radius: .35rem; padding: .6rem .8rem; }
.code-display { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 1.5rem; letter-spacing: .15em; text-align: center; padding: .5rem; background: var(--bg); border-radius: .35rem; }
ul.scopes { list-style: none; padding: 0; margin: .5rem 0 1rem; }
ul.scopes li { padding: .5rem 0; border-top: 1px solid var(--line); }
ul.scopes li:first-child { border-top: 0; }
ul.scopes code { font-weight: 600; }
ul.scopes .withheld { color: var(--muted); text-decoration: line-through; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
.tabs { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; border-bottom: 1px solid var(--line); padding-bottom: .75rem; margin-bottom: 1rem; }
.tabs a { color: var(--fg); text-decoration: none; padding: .25rem 0; }
.tabs a[aria-current=page] { font-weight: 700; border-bottom: 2px solid var(--accent); }
form.inline { margin-left: auto; }
button.link { background: none; border: 0; color: var(--accent); padding: 0; font-weight: 400; }
a.button { display: inline-block; font-weight: 600; padding: .6rem 1.1rem; border-radius: .35rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; text-decoration: none; }
a.button.secondary { background: #fff; color: var(--fg); border-color: #aab3c2; }
a.button.danger { background: var(--danger); border-color: var(--danger); padding: .3rem .7rem; font-size: .9rem; }
.table-wrap { overflow-x: auto; position: relative; }
a { color: var(--accent); }
/* The admin console: refused fields, facts as a two-column list, forms side by side in a row of actions. */
textarea, input[type=number], input[type=datetime-local] { width: 100%; font: inherit; padding: .6rem .7rem; border: 1px solid #aab3c2; border-radius: .35rem; background: #fff; }
textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9rem; }
textarea:focus { outline: 3px solid #9cc0f5; outline-offset: 1px; }
[aria-invalid=true] { border-color: var(--danger); border-width: 2px; }
.field-error { color: var(--danger); font-weight: 600; margin: .25rem 0 0; }
.hint { margin: 0 0 .25rem; }
.actions form { margin: 0; }
.badge.danger { background: #fdecea; color: var(--danger); }
dl.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .3rem 1rem; margin: 1rem 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
code.wrap { overflow-wrap: anywhere; }
table.data td:last-child { white-space: normal; }
table.data td { overflow-wrap: break-word; }
form.search .row { display: flex; gap: .5rem; }
nav.pager { display: flex; gap: 1.5rem; margin-top: 1rem; }
ul.sections { list-style: none; padding: 0; }
ul.sections li { padding: .5rem 0; border-top: 1px solid var(--line); }
ul.sections a { font-weight: 600; }
p.crumbs { margin: 0 0 .25rem; }
.filters { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: 0 1rem; }
td:last-child { white-space: nowrap; padding-left: .75rem; }
table { width: 100%; border-collapse: collapse; font-size: .95rem; }
th, td { text-align: left; padding: .5rem .4rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; }
fieldset { border: 1px solid var(--line); border-radius: .35rem; margin: 1rem 0 0; padding: .5rem .75rem; }
legend { font-weight: 600; padding: 0 .25rem; }
.check { display: flex; gap: .5rem; align-items: flex-start; margin: .4rem 0; }
.check input { margin-top: .35rem; }
.check label { font-weight: 400; margin: 0; }
.copy-row { display: flex; gap: .5rem; }
.token-value { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.badge { font-size: .75rem; background: #eee; border-radius: .25rem; padding: .05rem .35rem; }
/* The API reference (/docs/api). */
.operation { border-top: 1px solid var(--line); padding: .75rem 0; overflow-wrap: anywhere; }
.operation h3 { font-size: 1rem; margin: .25rem 0; overflow-wrap: anywhere; }
h4 { font-size: .9rem; margin: .75rem 0 .25rem; color: var(--muted); }
.method { display: inline-block; min-width: 4.2em; text-align: center; font-size: .75rem; font-weight: 700; border-radius: .25rem; padding: .05rem .35rem; color: #fff; background: var(--muted); }
.method-get { background: var(--ok); } .method-post { background: var(--accent); } .method-delete { background: var(--danger); }
ul.fields, ul.credentials, ul.contents { margin: .25rem 0 .5rem; padding-left: 1.1rem; }
ul.fields li { margin: .2rem 0; overflow-wrap: anywhere; }
ul.contents ul { padding-left: .5rem; list-style: none; }
ul.contents a { text-decoration: none; overflow-wrap: anywhere; }
code.field { font-weight: 600; }
.type { color: var(--muted); font-size: .9rem; }
dl.responses dt, dl.schemes dt { margin-top: .5rem; }
dl.responses dd, dl.schemes dd { margin: 0 0 .25rem 1rem; overflow-wrap: anywhere; }
.status { font-weight: 700; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.status-2xx { color: var(--ok); } .status-4xx, .status-5xx { color: var(--danger); }
/* The security log: fixed columns, so long addresses, user agents and details wrap instead of widening the page. */
table.events { table-layout: fixed; }
table.events th.when { width: 9rem; } table.events th.what { width: 13rem; } table.events th.from { width: 12rem; }
table.events td.wraps { white-space: normal; overflow-wrap: anywhere; }
table.events code { overflow-wrap: anywhere; font-size: .8rem; }
ul.facts { list-style: none; margin: 0; padding: 0; }
ul.facts li + li { margin-top: .15rem; }
nav.paging { display: flex; gap: 1.5rem; margin-top: 1rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
@media (max-width: 36rem) {
  /* On a phone each token is a block of labelled lines instead of a wide row. */
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.stack tr { display: block; border-bottom: 1px solid var(--line); padding: .5rem 0; }
  table.stack td { display: block; border: 0; padding: .15rem 0; }
  table.stack td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-size: .85rem; }
  td:last-child { padding-left: 0; } dl.facts { grid-template-columns: minmax(0, 1fr); gap: 0; } dl.facts dd { margin-bottom: .4rem; } .card { margin: 0; border-radius: 0; border-left: 0; border-right: 0; } }
ul.upstream-list { list-style: none; padding: 0; margin: .5rem 0 1rem; display: flex; flex-wrap: wrap; gap: .5rem; }
`;
