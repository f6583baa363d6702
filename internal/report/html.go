package report

import "html/template"

// page is the report's HTML. html/template escapes every value by its context; the
// SVG charts are template.HTML made by this package (see svg.go), the thumbnails
// template.URL data URIs made by MakeThumbnail.
var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{.CSP}}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 40px;color:#222;background:#fff}
h1{font-size:22px;margin:18px 0 6px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
th{color:#555;font-weight:600}
code,pre,.path{font-family:ui-monospace,monospace;font-size:12px}
pre{background:#f6f6f6;padding:6px;overflow:auto;max-height:220px;white-space:pre-wrap;word-break:break-all}
.counts span{display:inline-block;margin-right:18px;font-size:18px}
.ok{color:#1a7f37}.failed{color:#cf222e}.pending{color:#9a6700}
.gallery{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;width:220px;border:1px solid #ddd;border-radius:4px;padding:6px;background:#fafafa}
figure.failedfig{border-color:#cf222e}
figure img{display:block}.thumb{position:relative}.thumb svg{position:absolute;left:0;top:0}
.thumb rect{fill:none;stroke:{{.BoxColor}};stroke-width:2}
figcaption{font-size:12px;word-break:break-all}
.noimg{width:200px;height:60px;display:flex;align-items:center;justify-content:center;color:#888;background:#eee;font-size:12px}
svg .t{font-weight:600;font-size:13px}svg .l,svg .v{font-size:11px;fill:#444}svg .b{fill:#4472c4}
svg .s-done{fill:#2da44e}svg .s-failed{fill:#cf222e}svg .s-partial{fill:#d4a72c}svg .s-pending{fill:#999}
.legend span{display:inline-block;margin-right:14px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="counts"><span class="ok">{{.Totals.OK}} ok</span><span class="failed">{{.Totals.Failed}} failed</span><span class="pending">{{.Totals.Pending}} pending</span><span>of {{.Totals.Inputs}} inputs</span></p>

<h2 id="summary">Summary</h2>
<table>{{range .Summary}}<tr><th>{{.Key}}</th><td>{{.Value}}</td></tr>{{end}}</table>

<h2 id="failures">Failures</h2>
{{if .Failures}}{{range .Failures}}
<h3><span class="failed">{{.Count}}</span> × {{.Stage}}: <code>{{.Message}}</code></h3>
<p>for example: {{range $i, $p := .Examples}}{{if $i}}, {{end}}<span class="path">{{$p}}</span>{{end}}</p>
{{range .Logs}}<p>end of {{.Name}}:</p><pre>{{.Text}}</pre>{{end}}
{{end}}{{else}}<p>No input failed.</p>{{end}}

<h2 id="answers">What the model answered</h2>
<p>Most answers look like: <b>{{.Shape}}</b>.</p>
{{range .Charts}}<div>{{.}}</div>{{end}}
{{if .Raw}}<p>A sample of answers:</p>{{range .Raw}}<pre>{{.}}</pre>{{end}}{{end}}

<h2 id="gallery">Gallery</h2>
{{range .Sections}}<h3>{{.Title}}</h3>{{if .Note}}<p>{{.Note}}</p>{{end}}
<div class="gallery">{{range .Figures}}<figure class="{{if .Failed}}failedfig{{end}}" data-path="{{.Path}}">
{{if .Thumb}}<div class="thumb" style="width:{{.W}}px;height:{{.H}}px"><img src="{{.Thumb}}" width="{{.W}}" height="{{.H}}" data-scale="{{.Scale}}" alt="{{.Path}}">{{if .Boxes}}<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}">{{range .Boxes}}<rect x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .W}}" height="{{printf "%.1f" .H}}"/>{{end}}</svg>{{end}}</div>{{else}}<div class="noimg">not shown</div>{{end}}
<figcaption><span class="path">{{.Path}}</span>{{if .Caption}}<br>{{.Caption}}{{end}}{{if .Error}}<br><span class="failed">{{.Error}}</span>{{end}}</figcaption>
{{if .Answer}}<pre>{{.Answer}}</pre>{{end}}
</figure>{{end}}</div>{{end}}
{{if .NotShown}}<h3>Inputs the report could not show</h3><table>{{range .NotShown}}<tr><td class="path">{{.Key}}</td><td>{{.Value}}</td></tr>{{end}}</table>{{end}}

<h2 id="timeline">Timeline</h2>
{{if .Timeline}}<p class="legend"><span><i class="s-done" style="background:#2da44e"></i>done</span><span><i style="background:#cf222e"></i>some failed</span><span><i style="background:#d4a72c"></i>partial</span></p>
<div>{{.Timeline}}</div>{{else}}<p>No answer has a time recorded yet.</p>{{end}}
<table><tr><th>shard</th><th>state</th><th>inputs</th><th>ok</th><th>failed</th><th>pending</th><th>elapsed</th><th>nodes</th></tr>
{{range .Shards}}<tr><td>{{.Index}}</td><td class="{{.State}}">{{.State}}</td><td>{{.Inputs}}</td><td>{{.OK}}</td><td>{{.Failed}}</td><td>{{.Pnd}}</td><td>{{.Elapsed}}</td><td>{{.Nodes}}</td></tr>
{{end}}</table>{{if .MoreRows}}<p>… and {{.MoreRows}} more shards (see <code>scv-hpc status</code>).</p>{{end}}
<p><small>made by scv-hpc at {{.Generated}}</small></p>
</body>
</html>
`))
