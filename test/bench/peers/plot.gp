# gnuplot -c test/bench/peers/plot.gp DATA_DIR ROWS OUT.svg
#
# The plot of `npm run bench -- --peers`: one panel per row, drawn from what
# test/bench/peers.ts writes to DATA_DIR:
#   N.tsv  100 ms bins: time (s since the row's load started), 2xx responses
#          per second, requests lost in the bin, non-2xx responses in the bin,
#          and the raw sent - answered of the bin (not drawn)
#   N.gp   the panel's title and axis ranges, and a dashed line at each switch
#
# Blue line, left axis: 2xx responses per second.
# Red impulses, right axis: requests lost in the bin, i.e. sent by wrk and never
#   answered (the connection was reset or closed under it; wrk counts a socket
#   error and sends a new request on a new connection). From record.lua's
#   counts: sent - answered is one per busy connection (at most 64) plus every
#   lost request, so the rise of max(sent - answered - 64) over the run is a
#   lower bound on what was lost by then, exact once the connections are busy
#   again; its total matches wrk's reset count (see the table's notes).
# Orange impulses, right axis: non-2xx responses in the bin.
data = ARG1
n = int(ARG2)
set encoding utf8
set termoption noenhanced
set terminal svg size 960, (160 * n + 60) dynamic font "sans,10" background "#ffffff"
set output ARG3
set multiplot layout n, 1 title "2xx responses/s (blue, left axis); requests lost (red) and non-2xx (orange) per 100 ms (right axis)" font ",11"
set lmargin 9
set rmargin 8
set tmargin 1.6
set bmargin 1.4
set ytics nomirror format "%.0s%c"
set y2tics nomirror
set xtics nomirror
set ylabel "2xx/s" offset 1.5, 0
set y2label "per 100 ms" offset -1.5, 0
set grid ytics lc rgb "#eeeeee" lt 1
unset key
set title font ",10" offset 0, -0.5
do for [i = 1:n] {
  unset arrow
  if (i == n) { set bmargin 3; set xlabel "seconds since the row's load started; dashed: a switch starts" offset 0, 0.5 }
  load sprintf("%s/%d.gp", data, i)
  f = sprintf("%s/%d.tsv", data, i)
  plot f using 1:2 with lines lw 1 lc rgb "#1f5fbf", \
       f using 1:($3 > 0 ? $3 : NaN) axes x1y2 with impulses lw 2 lc rgb "#d62728", \
       f using 1:($4 > 0 ? $4 : NaN) axes x1y2 with impulses lw 2 lc rgb "#ff7f0e"
}
unset multiplot
