# The echo figures at a glance: each server's requests per second as a
# ratio to the hand-written libevent limit, per configuration. Reads the
# table bench/run.sh writes (a header line, then one row per configuration:
# label, then one ratio per server).
# usage: gnuplot -e "data='echo-chart.dat'; out='echo.svg'; what='pinned'" chart.gp
set terminal svg size 1000,460 font "sans,12" background "white"
set output out
set title sprintf("Echo requests per second, as a ratio to hand-written libevent (%s, median)", what)
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [0.02:8]
set ytics (0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 4, 8)
set xrange [-0.6:2.6]
set grid ytics
set ylabel "ratio to the limit (log scale)"
set key outside right top
set datafile separator "\t"
plot for [col=2:8] data using col:xtic(1) title columnheader(col)
