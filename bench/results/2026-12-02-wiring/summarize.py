import re, statistics, glob, sys
def parse(path):
    rows = {}
    text = open(path).read()
    for line in text.split('\n'):
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) >= 14 and re.match(r'[12] ', cells[0]):
            key = f"{cells[0]} / {cells[1]} / {cells[2]} conn"
            rows[key] = {'M msg/s': float(cells[5]), 'MB/s': float(cells[6]), 'CPU s/GB': float(cells[7].split()[0])}
        if len(cells) >= 14 and cells[0] in ('memory', 'durable (sync = interval)', 'best_effort'):
            rows['delivery ' + cells[0]] = {'M msg/s': float(cells[3]), 'MB/s': float(cells[4]), 'CPU s/GB': float(cells[6])}
    return rows
runs = {w: [parse(p) for p in sorted(glob.glob(f'/tmp/bench/{w}-*.md'))] for w in ('base', 'new')}
keys = list(runs['base'][0].keys())
metric = sys.argv[1] if len(sys.argv) > 1 else 'MB/s'
print(f"| row | before: median (min–max) {metric} | after: median (min–max) {metric} | after / before (medians) |")
print("|---|---|---|---|")
for key in keys:
    b = [r[key][metric] for r in runs['base'] if key in r]
    n = [r[key][metric] for r in runs['new'] if key in r]
    mb, mn = statistics.median(b), statistics.median(n)
    print(f"| {key} | {mb:g} ({min(b):g}–{max(b):g}) | {mn:g} ({min(n):g}–{max(n):g}) | {mn/mb*100:.0f} % |")
