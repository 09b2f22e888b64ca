#!/bin/bash
# evchat beside the references a user would weigh, in one run: the
# hand-written libevent echo server ("the limit", two ways to write),
# Python's asynchat and asyncio, and redis-server. Figures and ratios only:
# nothing here passes or fails on speed. A wrong reply, a crash or a
# missing program that the run needs does fail it.
#
#   usage: bench/run.sh [quick|full]     (from the build directory)
#
# quick: small counts, unpinned, for CI: proves every part runs and every
#        reply is right. full: the figures of docs/BENCHMARKS.md (minutes).
# Results go to $OUT (default ./bench-results): one .dat file per part and
# summary.md, the tables; echo.svg too when gnuplot is installed.
#
# Wall-clock figures are taken A B, B A (each server in turn, every other
# round in reverse) and compared within each round, pinned to one CPU with
# taskset and unpinned; on two shared vCPUs the unpinned ones swing by 2x.
# Instruction counts from callgrind do not.
set -euo pipefail

mode=${1:-full}
case $mode in quick | full) ;; *) echo "usage: $0 [quick|full]" >&2; exit 2 ;; esac
src=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-bench-results}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
loadgen=./bench/loadgen
libtool=./libtool
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$mode" = full ]; then
	rounds=9 pinnings="pinned unpinned"
	lines_c1=300000 lines_c50=12000 lines_big=15000 py_div=20
	cg_lo=20000 cg_hi=120000
	idle_conns=10000 frame_big=$((64 << 20)) file_mib=1024 file_rounds=3
	redis_n=100000 redis_n16=1000000 redis_rounds=11 redis_cg_tests="set get"
else
	rounds=1 pinnings="unpinned"
	lines_c1=20000 lines_c50=400 lines_big=200 py_div=10
	cg_lo=2000 cg_hi=6000
	idle_conns=1000 frame_big=$((2 << 20)) file_mib=64 file_rounds=1
	redis_n=5000 redis_n16=5000 redis_rounds=1 redis_cg_tests="set"
fi
idle_conns=${IDLE_CONNS:-$idle_conns}

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# start NAME CMD...: runs a server that prints "listening on HOST:PORT";
# sets $pid and $port.
start() {
	local name=$1
	shift
	"$@" >"$OUT/$name.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 200); do
		port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$OUT/$name.log")
		[ -n "$port" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "run.sh: $name did not start:" >&2
	cat "$OUT/$name.log" >&2
	exit 1
}

stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# CPU time a process has used, user and system, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# How often a process has gone to sleep (its main thread): for a server,
# each is an epoll_wait that found nothing and a wake-up after it.
sleeps() { awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$1/status"; }
# CPU time of a process's main thread in nanoseconds: a short run is a few
# clock ticks, too coarse to compare.
cpu_ns() { awk '{print $1}' "/proc/$1/schedstat"; }
# The process serving behind PID: a libtool wrapper script may have forked it.
serving() {
	local child
	child=$(pgrep -P "$1" | head -1 || true)
	echo "${child:-$1}"
}
python=$(python3 -c 'import sys; print(sys.executable)')

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# round_order ROUND NAME...: the names, reversed in every other round (A B,
# then B A), so that a drift of the machine's speed over a round favours
# no server.
round_order() {
	local r=$1
	shift
	if [ $((r % 2)) = 0 ]; then printf '%s\n' "$@" | tac | tr '\n' ' '; else echo "$@"; fi
}

servers="limit limit-direct evchat evchat-bytes evchat-both asynchat asyncio"
server_cmd() {
	case $1 in
	limit) echo ./bench/limit-echo -p 0 ;;
	limit-direct) echo ./bench/limit-echo -p 0 -d ;;
	evchat) echo ./samples/echo -p 0 -m 0 ;;
	evchat-bytes) echo ./samples/echo -p 0 -m 0 -b ;;
	evchat-both) echo ./samples/echo -p 0 -m 0 -B ;;
	asynchat) echo python3 "$src/bench/asynchat_echo.py" 0 ;;
	asyncio) echo python3 "$src/bench/asyncio_echo.py" 0 ;;
	esac
}

configs="c1 c50 big"
load_shape() { # config: connections, window, line size
	case $1 in
	c1) echo "-c 1 -w 64 -s 32" ;;
	c50) echo "-c 50 -w 16 -s 32" ;;
	big) echo "-c 4 -w 16 -s 16384" ;;
	esac
}
config_args() { # config lines-divisor
	local lines
	case $1 in c1) lines=$lines_c1 ;; c50) lines=$lines_c50 ;; big) lines=$lines_big ;; esac
	echo "$(load_shape "$1") -n $((lines / $2))"
}
config_label() {
	case $1 in
	c1) echo "1 conn, window 64, 32 B lines" ;;
	c50) echo "50 conns, window 16, 32 B lines" ;;
	big) echo "4 conns, window 16, 16 KiB lines" ;;
	esac
}

# ---- echo: requests per second ---------------------------------------------
echo "== echo throughput ($mode: $rounds round(s), $pinnings)"
: >"$OUT/echo.dat"
for pinning in $pinnings; do
	pin=()
	[ "$pinning" = pinned ] && pin=(taskset -c 0)
	declare -A port_of=() pid_of=()
	for s in $servers; do
		# shellcheck disable=SC2046
		start "echo-$s" "${pin[@]}" $(server_cmd "$s")
		port_of[$s]=$port pid_of[$s]=$pid
	done
	declare -A serving_of=()
	for s in $servers; do serving_of[$s]=$(serving "${pid_of[$s]}"); done
	for r in $(seq "$rounds"); do
		# shellcheck disable=SC2086
		order=$(round_order "$r" $servers)
		for c in $configs; do
			for s in $order; do
				div=1
				case $s in asynchat | asyncio) div=$py_div ;; esac
				srv=${serving_of[$s]}
				ns0=$(cpu_ns "$srv") slept=$(sleeps "$srv")
				# shellcheck disable=SC2046
				line=$("${pin[@]}" "$loadgen" -p "${port_of[$s]}" $(config_args "$c" "$div"))
				ns1=$(cpu_ns "$srv") slept1=$(sleeps "$srv")
				rps=$(sed -n 's/.*req\/s=\([0-9]*\).*/\1/p' <<<"$line")
				n=$(sed -n 's/.*lines=\([0-9]*\).*/\1/p' <<<"$line")
				# The server's own CPU time per request, and how
				# often it slept per 1000: on one CPU a server that
				# spends less per request can find its sockets empty
				# sooner, and sleep, and be woken, more often.
				read -r nsr spk < <(awk -v a="$ns0" -v b="$ns1" -v x="$slept" -v y="$slept1" -v n="$n" \
					'BEGIN {printf "%.0f %.1f\n", (b - a) / n, (y - x) * 1000 / n}')
				echo "$pinning $c $s $r $rps $nsr $spk" >>"$OUT/echo.dat"
				printf '  %-8s %-4s %-13s round %d: %9s req/s, server %5s ns CPU and %5s sleeps per 1000 requests\n' \
					"$pinning" "$c" "$s" "$r" "$rps" "$nsr" "$spk"
			done
		done
	done
	for s in $servers; do stop "${pid_of[$s]}"; done
	unset port_of pid_of serving_of
done

# ---- echo: instructions per request ------------------------------------------
: >"$OUT/instructions.dat"
if command -v valgrind >/dev/null 2>&1; then
	echo "== instructions per request (callgrind, $cg_lo and $cg_hi lines, differenced)"
	# count SERVER CONFIG LINES: "instructions requests" for one run
	count() {
		local s=$1 c=$2 n=$3 cg=$OUT/cg.$1.$2.$3 cmd args out
		cmd=$(server_cmd "$s")
		# shellcheck disable=SC2086
		case $s in
		asynchat | asyncio)
			# The interpreter itself, not a wrapper script around it.
			cmd=${cmd/python3/$python}
			start "cg-$s" valgrind --tool=callgrind --callgrind-out-file="$cg" $cmd ;;
		*) start "cg-$s" "$libtool" --mode=execute valgrind --tool=callgrind --callgrind-out-file="$cg" $cmd ;;
		esac
		# n requests in all; the 16 KiB lines a tenth as many.
		case $c in c50) n=$((n / 50)) ;; big) n=$((n / 40)) ;; esac
		args="$(load_shape "$c") -n $n"
		# shellcheck disable=SC2086
		out=$("$loadgen" -p "$port" $args)
		stop "$pid"
		echo "$(awk '/^summary:/ {print $2}' "$cg") $(sed -n 's/.*lines=\([0-9]*\).*/\1/p' <<<"$out")"
		rm -f "$cg"
	}
	for c in $configs; do
		for s in limit limit-direct evchat evchat-bytes evchat-both asynchat; do
			lo=$cg_lo hi=$cg_hi
			if [ $s = asynchat ]; then
				[ "$c" = c1 ] || continue
				lo=$((cg_lo / 10)) hi=$((cg_hi / 10))
			fi
			read -r ir_lo n_lo <<<"$(count "$s" "$c" "$lo")"
			read -r ir_hi n_hi <<<"$(count "$s" "$c" "$hi")"
			per=$(awk -v a="$ir_lo" -v b="$ir_hi" -v m="$n_lo" -v n="$n_hi" 'BEGIN {printf "%.0f", (b - a) / (n - m)}')
			echo "$c $s $per" >>"$OUT/instructions.dat"
			printf '  %-4s %-13s %8s instructions per request\n' "$c" "$s" "$per"
		done
	done
else
	echo "== instructions per request: skipped (valgrind not installed)"
fi

# ---- resp sample vs redis-server ------------------------------------------------
# Both servers run through every test, alternated, pinned (server and
# redis-benchmark on one CPU) and not, as the echo servers do. Unpinned,
# redis-benchmark's one thread is the bottleneck: both servers idle part
# of the time, and requests per second measure the client as much as the
# server. So each run also takes the server's own CPU time per request
# (/proc, user and system, in clock ticks).
: >"$OUT/redis.dat"
if command -v redis-server >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1; then
	echo "== redis-benchmark: redis-server vs samples/resp (-n $redis_n, -n $redis_n16 with -P 16, 50 clients; $redis_rounds round(s), $pinnings)"
	rport=$(free_port)
	redis-server --port "$rport" --save "" --appendonly no --bind 127.0.0.1 \
		>"$OUT/redis-server.log" 2>&1 &
	redis_pid=$!
	pids+=("$redis_pid")
	for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
	start resp ./samples/resp -p 0
	resp_pid=$pid resp_port=$port
	resp_server=$(serving "$resp_pid")
	all_cpus=0-$(($(nproc) - 1))
	tck=$(getconf CLK_TCK)
	for pinning in $pinnings; do
		pin=()
		cpus=$all_cpus
		[ "$pinning" = pinned ] && pin=(taskset -c 0) cpus=0
		taskset -a -p -c "$cpus" "$redis_pid" >/dev/null
		taskset -a -p -c "$cpus" "$resp_server" >/dev/null
		for r in $(seq "$redis_rounds"); do
			for P in 1 16; do
				n=$redis_n
				[ "$P" = 16 ] && n=$redis_n16
				for t in ping_inline set get; do
					order=$(round_order "$r" redis resp)
					for who in $order; do
						p=$rport srv=$redis_pid
						[ "$who" = resp ] && p=$resp_port srv=$resp_server
						before=$(cpu_ticks "$srv") slept=$(sleeps "$srv")
						v=$("${pin[@]}" redis-benchmark -p "$p" -t "$t" -n "$n" -P "$P" -q 2>/dev/null |
							tr '\r' '\n' | sed -n 's/^[A-Z_]*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
						after=$(cpu_ticks "$srv")
						us=$(awk -v a="$before" -v b="$after" -v t="$tck" -v n="$n" 'BEGIN {printf "%.3f", (b - a) / t * 1e6 / n}')
						wakes=$(awk -v a="$slept" -v b="$(sleeps "$srv")" -v n="$n" 'BEGIN {printf "%.0f", (b - a) * 1000 / n}')
						T=$(tr a-z A-Z <<<"$t")
						echo "$pinning $P $T $who $r ${v:-0} $us $wakes" >>"$OUT/redis.dat"
						printf '  %-8s -P %-2s %-12s %-6s round %d: %10s req/s, %6s us CPU and %4s sleeps per 1000 requests\n' \
							"$pinning" "$P" "$T" "$who" "$r" "${v:-0}" "$us" "$wakes"
					done
				done
			done
		done
	done
	taskset -a -p -c "$all_cpus" "$redis_pid" >/dev/null
	stop "$resp_pid"
else
	echo "== redis-benchmark: skipped (redis-server or redis-benchmark not installed)"
	redis_pid=
fi

# ---- resp vs redis-server: instructions per request ------------------------------
# Wall figures under redis-benchmark measure its client as much as the
# servers (unpipelined, neither server fills a CPU); instruction counts
# say what each server itself spends on a request.
: >"$OUT/redis-instructions.dat"
if [ -n "$redis_pid" ] && command -v valgrind >/dev/null 2>&1; then
	echo "== redis-benchmark under callgrind ($cg_lo and $cg_hi requests, differenced)"
	# rcount WHO TEST PIPELINE REQUESTS: the server's instructions
	rcount() {
		local who=$1 t=$2 P=$3 n=$4 cg=$OUT/cg.redis-$1 p
		if [ "$who" = redis ]; then
			p=$(free_port)
			valgrind --tool=callgrind --callgrind-out-file="$cg" redis-server --port "$p" \
				--save "" --appendonly no --bind 127.0.0.1 >"$OUT/cg-redis-server.log" 2>&1 &
			pid=$!
			pids+=("$pid")
			for _ in $(seq 200); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
		else
			start cg-resp "$libtool" --mode=execute valgrind --tool=callgrind \
				--callgrind-out-file="$cg" ./samples/resp -p 0
			p=$port
		fi
		redis-benchmark -p "$p" -t "$t" -n "$n" -P "$P" -q >/dev/null 2>&1 || {
			echo "run.sh: redis-benchmark against $who under callgrind failed" >&2
			exit 1
		}
		stop "$pid"
		awk '/^summary:/ {print $2}' "$cg"
		rm -f "$cg"
	}
	for t in $redis_cg_tests; do
		for P in 1 16; do
			for who in redis resp; do
				lo=$(rcount "$who" "$t" "$P" "$cg_lo")
				hi=$(rcount "$who" "$t" "$P" "$cg_hi")
				[ -n "$lo" ] && [ -n "$hi" ] || {
					echo "run.sh: no callgrind count for $who" >&2
					exit 1
				}
				per=$(awk -v a="$lo" -v b="$hi" -v m="$cg_lo" -v n="$cg_hi" 'BEGIN {printf "%.0f", (b - a) / (n - m)}')
				echo "$P $t $who $per" >>"$OUT/redis-instructions.dat"
				printf '  -P %-2s %-4s %-6s %8s instructions per request\n' "$P" "$t" "$who" "$per"
			done
		done
	done
fi

# ---- idle connections: resident memory ---------------------------------------------
echo "== resident memory per idle connection ($idle_conns connections)"
: >"$OUT/idle.dat"
idle() { # NAME PID PORT [loadgen flags]
	local name=$1 p=$2 port=$3
	shift 3
	local before after
	before=$(rss_kb "$p")
	coproc HOLD { "$loadgen" -p "$port" -I "$idle_conns" "$@"; }
	local ready
	read -r ready <&"${HOLD[0]}"
	[ "${ready%% *}" = ready ] || { echo "run.sh: idle $name: $ready" >&2; exit 1; }
	after=$(rss_kb "$p")
	exec {HOLD[1]}>&-
	wait "$HOLD_PID"
	local per
	per=$(awk -v a="$before" -v b="$after" -v n="$idle_conns" 'BEGIN {printf "%.0f", (b - a) * 1024 / n}')
	echo "$name $per" >>"$OUT/idle.dat"
	printf '  %-14s %6s bytes per connection (RSS %s kB -> %s kB)\n' "$name" "$per" "$before" "$after"
}
start idle-limit ./bench/limit-echo -p 0
idle limit "$pid" "$port"
stop "$pid"
start idle-evchat ./samples/echo -p 0
idle evchat "$pid" "$port"
stop "$pid"
start idle-resp ./samples/resp -p 0
idle "evchat resp" "$pid" "$port" -P
stop "$pid"
if [ -n "$redis_pid" ]; then
	idle redis-server "$redis_pid" "$rport" -P
	stop "$redis_pid"
fi

# ---- one big frame in 1-byte writes ----------------------------------------------
# The client's one-byte sends dominate the wall time, so the figure is the
# server's own CPU time per byte: flat if framing is linear in the frame.
echo "== one frame in 1-byte writes: 1 MiB and $((frame_big >> 20)) MiB (server CPU per byte)"
: >"$OUT/frame.dat"
start frame ./samples/echo -p 0 -m 0
hz=$(getconf CLK_TCK)
for size in $((1 << 20)) "$frame_big"; do
	t0=$(cpu_ticks "$pid")
	line=$("$loadgen" -p "$port" -F "$size" -k 1)
	t1=$(cpu_ticks "$pid")
	nsb=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$size" 'BEGIN {printf "%.1f", t / hz * 1e9 / n}')
	wall=$(sed -n 's/.*ns\/B=\([0-9.]*\).*/\1/p' <<<"$line")
	echo "$size $nsb $wall" >>"$OUT/frame.dat"
	printf '  %5d MiB: server %s ns of CPU per byte (wall %s ns per byte)\n' "$((size >> 20))" "$nsb" "$wall"
done
stop "$pid"

# ---- a large file -------------------------------------------------------------
echo "== a large file: evchat_push_file vs evbuffer_add_file"
./bench/sendfile "$file_mib" "$file_rounds" | tee "$OUT/file.dat"

# ---- summary ---------------------------------------------------------------------
# paired SERVER REFERENCE, reading "name round figure" lines: the median
# of the rounds' own ratios of SERVER's figure over REFERENCE's, then the
# lowest-highest. A ratio within a round leaves out the drift between
# rounds.
paired() {
	awk -v s="$1" -v ref="$2" '{v[$1, $2] = $3; r[$2] = 1}
		END {for (i in r) if (v[ref, i] > 0 && (s, i) in v) print v[s, i] / v[ref, i]}' |
		sort -g | awk '{a[NR] = $1} END {if (NR == 0) {print "- -"; exit}
			m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			printf "%.2fx %.2f-%.2f\n", m, a[1], a[NR]}'
}
# echo_paired PINNING CONFIG SERVER REFERENCE: requests/s, from echo.dat.
echo_paired() {
	awk -v p="$1" -v c="$2" '$1==p && $2==c {print $3, $4, $5}' "$OUT/echo.dat" | paired "$3" "$4"
}
# echo_field PINNING CONFIG SERVER FIELD: the median over the rounds.
echo_field() {
	awk -v p="$1" -v c="$2" -v s="$3" -v f="$4" '$1==p && $2==c && $3==s {print $f}' "$OUT/echo.dat" | median
}
# Table cells, given PINNING CONFIG SERVER: requests/s and the ratio to the
# limit (kept for the chart too); the server's CPU per request and sleeps.
rps_cell() {
	local q v
	read -r q _ <<<"$(echo_paired "$1" "$2" "$3" limit)"
	v=$(echo_field "$1" "$2" "$3" 5)
	echo "$1 $2 $3 $v ${q%x}" >>"$OUT/echo-summary.dat.tmp"
	echo "$v ($q)"
}
cpu_cell() { echo "$(echo_field "$1" "$2" "$3" 6) ns, $(echo_field "$1" "$2" "$3" 7)"; }
# echo_servers_table CELL: for each pinning, a row per configuration and a
# column per server, each cell from CELL.
echo_servers_table() {
	local pinning c s row
	for pinning in $pinnings; do
		echo "### $pinning"
		echo
		echo "| configuration | limit | limit, direct write | evchat | evchat, bytes hook | evchat, both hooks | asynchat | asyncio |"
		echo "|---|---|---|---|---|---|---|---|"
		for c in $configs; do
			row="| $(config_label "$c") |"
			for s in $servers; do row="$row $("$1" "$pinning" "$c" "$s") |"; done
			echo "$row"
		done
		echo
	done
}
{
	echo "## Echo: requests per second (median of $rounds), ratio to the limit"
	echo
	echo "Each ratio is the median of the rounds' own ratios: in each round the"
	echo "server's figure over the limit's from the same round."
	echo
	echo_servers_table rps_cell
	echo "## Echo: evchat over the direct-write limit (the stretch target)"
	echo
	echo "The median of the rounds' own ratios, then the lowest and highest."
	echo
	echo "| run | configuration | evchat | evchat, bytes hook | evchat, both hooks |"
	echo "|---|---|---|---|---|"
	for pinning in $pinnings; do
		for c in $configs; do
			row="| $pinning | $(config_label "$c") |"
			for s in evchat evchat-bytes evchat-both; do
				read -r q range <<<"$(echo_paired "$pinning" "$c" "$s" limit-direct)"
				row="$row $q ($range) |"
			done
			echo "$row"
		done
	done
	echo
	echo "## Echo: the server's CPU time per request and its sleeps (median of $rounds)"
	echo
	echo "Each cell: nanoseconds of the server's CPU time per request (user and"
	echo "system, from /proc/PID/schedstat), then how often it went to sleep in"
	echo "epoll_wait per 1000 requests. Pinned, the server and load generator"
	echo "share a CPU, and every sleep hands it over."
	echo
	echo_servers_table cpu_cell
	if [ -s "$OUT/instructions.dat" ]; then
		echo "## Echo: instructions per request (callgrind), ratio to the limit"
		echo
		echo "| configuration | limit | limit, direct write | evchat | evchat, bytes hook | evchat, both hooks | asynchat |"
		echo "|---|---|---|---|---|---|---|"
		for c in $configs; do
			lim=$(awk -v c="$c" '$1==c && $2=="limit" {print $3}' "$OUT/instructions.dat")
			row="| $(config_label "$c") |"
			for s in limit limit-direct evchat evchat-bytes evchat-both asynchat; do
				v=$(awk -v c="$c" -v s="$s" '$1==c && $2==s {print $3}' "$OUT/instructions.dat")
				if [ -z "$v" ]; then row="$row - |"; continue; fi
				row="$row $(awk -v v="$v" -v l="$lim" 'BEGIN {printf "%d (%.2fx)", v, v / l}') |"
			done
			echo "$row"
		done
		echo
	fi
	if [ -s "$OUT/redis.dat" ]; then
		echo "## Redis protocol: redis-benchmark (median of $redis_rounds), resp / redis-server"
		echo
		echo "Requests per second; their ratio, the median of the rounds' own ratios"
		echo "(resp over redis-server in the same round), with the lowest and"
		echo "highest; the server's CPU time per request (user and system,"
		echo "microseconds; clock ticks of $((1000 / $(getconf CLK_TCK))) ms over each run), its ratio"
		echo "taken the same way; and how often each server went to sleep in"
		echo "epoll_wait per 1000 requests."
		echo
		echo "| run | test | redis-server req/s | resp req/s | ratio | rounds | redis-server CPU us | resp CPU us | ratio | redis-server sleeps | resp sleeps |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|"
		for pinning in $pinnings; do
			for P in 1 16; do
				for t in PING_INLINE SET GET; do
					col() { awk -v g="$pinning" -v P="$P" -v t="$t" -v w="$1" -v f="$2" '$1==g && $2==P && $3==t && $4==w {print $f}' "$OUT/redis.dat" | median; }
					a=$(col redis 6) b=$(col resp 6) ca=$(col redis 7) cb=$(col resp 7) wa=$(col redis 8) wb=$(col resp 8)
					redis_paired() { awk -v g="$pinning" -v P="$P" -v t="$t" -v f="$1" '$1==g && $2==P && $3==t {print $4, $5, $f}' "$OUT/redis.dat" | paired resp redis; }
					read -r q spread <<<"$(redis_paired 6)"
					read -r qc _ <<<"$(redis_paired 7)"
					echo "| $pinning | $t -P $P | $a | $b | ${q%x} | $spread | $ca | $cb | ${qc%x} | $wa | $wb |"
				done
			done
		done
		echo
	fi
	if [ -s "$OUT/redis-instructions.dat" ]; then
		echo "## Redis protocol: instructions per request (callgrind), resp / redis-server"
		echo
		echo "| test | redis-server | samples/resp | ratio |"
		echo "|---|---|---|---|"
		for P in 1 16; do
			for t in $redis_cg_tests; do
				a=$(awk -v P="$P" -v t="$t" '$1==P && $2==t && $3=="redis" {print $4}' "$OUT/redis-instructions.dat")
				b=$(awk -v P="$P" -v t="$t" '$1==P && $2==t && $3=="resp" {print $4}' "$OUT/redis-instructions.dat")
				echo "| $(tr a-z A-Z <<<"$t") -P $P | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b / a}') |"
			done
		done
		echo
	fi
	echo "## Resident memory per idle connection ($idle_conns connections)"
	echo
	echo "| server | bytes per connection |"
	echo "|---|---|"
	awk '{v=$NF; $NF=""; sub(/ $/, ""); printf "| %s | %s |\n", $0, v}' "$OUT/idle.dat"
	echo
	echo "## One frame in 1-byte writes"
	echo
	echo "| frame | server CPU, ns per byte | wall, ns per byte |"
	echo "|---|---|---|"
	awk '{printf "| %d MiB | %s | %s |\n", $1 / 1048576, $2, $3}' "$OUT/frame.dat"
	echo
	echo "## A large file"
	echo
	cat "$OUT/file.dat"
} >"$OUT/summary.md"
mv "$OUT/echo-summary.dat.tmp" "$OUT/echo-summary.dat"
echo
cat "$OUT/summary.md"

# The chart: pinned figures when there are some, they are the steadier.
chart_pin=unpinned
grep -q '^pinned ' "$OUT/echo-summary.dat" && chart_pin=pinned
{
	printf 'configuration\tlimit\tlimit, direct write\tevchat\tevchat, bytes hook\tevchat, both hooks\tasynchat\tasyncio\n'
	for c in $configs; do
		printf '%s' "$(config_label "$c" | sed 's/, window /, w/; s/ lines//')"
		for s in $servers; do
			printf '\t%s' "$(awk -v p="$chart_pin" -v c="$c" -v s="$s" '$1==p && $2==c && $3==s {print $5}' "$OUT/echo-summary.dat")"
		done
		printf '\n'
	done
} >"$OUT/echo-chart.dat"
if command -v gnuplot >/dev/null 2>&1; then
	gnuplot -e "data='$OUT/echo-chart.dat'; out='$OUT/echo.svg'; what='$chart_pin'" "$src/bench/chart.gp" &&
		echo "chart: $OUT/echo.svg"
else
	echo "chart: skipped (gnuplot not installed)"
fi
