# Shared by bench/run.sh and bench/profile.sh (sourced): loopback ports, nginx as a Range-capable
# upstream, hlsgate servers. The caller sets: bin (the hlsgate binary), work (a folder readable by
# nginx's workers), pids (an array: every process started here is appended, for the caller's
# cleanup) and defines log().

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # wait_http URL [seconds]: until URL answers (any HTTP status)
  local i
  for ((i = 0; i < ${2:-20} * 10; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" != 000 ] && return 0
    sleep 0.1
  done
  log "$1 did not answer"; return 1
}
stop() { # stop PID: ends one process we started (by its id)
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# nginx serving ROOT with Range (static files), sendfile, 2 workers; access log with the status and
# bytes sent of every request (server.py counts upstream requests and bytes from it).
start_nginx() { # start_nginx ROOT DIR PORT
  local root=$1 dir=$2 port=$3
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 2;
error_log $dir/logs/error.log;
pid $dir/nginx.pid;
events { worker_connections 1024; }
http {
  log_format bench '\$msec \$status \$bytes_sent "\$request" "\$http_range"';
  access_log $dir/logs/access.log bench;
  client_body_temp_path $dir/cb; proxy_temp_path $dir/px; fastcgi_temp_path $dir/fc;
  uwsgi_temp_path $dir/uw; scgi_temp_path $dir/sc;
  default_type application/octet-stream;
  sendfile on; tcp_nopush on; keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; root $root; }
}
EOF
  nginx -p "$dir" -c "$dir/nginx.conf" >/dev/null 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/" 10
}

SECRET=bench-secret-0123456789abcdef
API_KEY=bench-key
start_hlsgate() { # start_hlsgate NAME PORT ARGS... → sets last_pid
  local name=$1 port=$2; shift 2
  "$bin" serve --listen "127.0.0.1:$port" "$@" >"$work/$name.log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
  wait_http "http://127.0.0.1:$port/healthz"
}
signed=(--secret "$SECRET" --api-key "$API_KEY" --allow-private-upstream 127.0.0.1/32)
