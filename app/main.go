// Command app is bluegreen's demo application: a tiny HTTP server that knows
// its slot colour and version, reports readiness, and drains on SIGTERM so a
// slot restart never cuts an in-flight request.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// version is the default for --version; release builds set it with -ldflags "-X main.version=v2".
var version = "dev"

type server struct {
	color      string
	version    string
	activeFile string
	faultDir   string
	started    time.Time
	draining   atomic.Bool
	inFlight   atomic.Int64
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8001", "unix:PATH or HOST:PORT")
	color := flag.String("color", "blue", "slot colour this process serves as")
	ver := flag.String("version", version, "release version reported by /status")
	activeFile := flag.String("active-file", "/var/lib/bluegreen/active", "file holding the live colour, written by the switch")
	faultDir := flag.String("fault-dir", "", "demo fault injection: <color>.unready makes /health/ready fail, <color>.error500 makes / fail")
	drain := flag.Duration("drain-timeout", 25*time.Second, "how long SIGTERM waits for in-flight requests")
	delay := flag.Duration("shutdown-delay", time.Second, "how long readiness reports 503 before the listener closes")
	flag.Parse()

	s := &server{color: *color, version: *ver, activeFile: *activeFile, faultDir: *faultDir, started: time.Now()}
	ln, err := listenOn(*listen)
	if err != nil {
		log.Fatalf("listen %s: %v", *listen, err)
	}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 75 * time.Second}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	// Serve returns as soon as Shutdown starts; main must wait for the drain to end.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sig := <-stop
		// Readiness goes 503 first, so anything polling it stops sending work;
		// Shutdown then closes the listener and waits for in-flight requests.
		s.draining.Store(true)
		log.Printf("%s: readiness is 503; draining %d in-flight request(s) after %s, up to %s", sig, s.inFlight.Load(), *delay, *drain)
		time.Sleep(*delay)
		ctx, cancel := context.WithTimeout(context.Background(), *drain)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Printf("drain incomplete: %v", err)
		}
	}()

	log.Printf("%s %s listening on %s", s.color, s.version, *listen)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve: %v", err)
	}
	<-drained
	log.Printf("drained, exiting")
}

// listenOn accepts "unix:/path" or "host:port". A unix socket is made
// group-writable so nginx (in the app's group) can connect.
func listenOn(addr string) (net.Listener, error) {
	if strings.HasPrefix(addr, "unix:") {
		path := strings.TrimPrefix(addr, "unix:")
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		return ln, os.Chmod(path, 0o660)
	}
	return net.Listen("tcp", addr)
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/health/live", ok)
	mux.HandleFunc("/health/ready", s.ready)
	mux.HandleFunc("/status", s.status)
	mux.HandleFunc("/slow", s.slow)
	mux.HandleFunc("/", s.hello)
	return s.track(mux)
}

// track counts in-flight requests and stamps every response with the slot,
// which is how the switch verifies through nginx which colour is serving.
func (s *server) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		w.Header().Set("X-Bluegreen-Color", s.color)
		w.Header().Set("X-Bluegreen-Version", s.version)
		next.ServeHTTP(w, r)
	})
}

func (s *server) fault(kind string) bool {
	if s.faultDir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(s.faultDir, s.color+"."+kind))
	return err == nil
}

func (s *server) ready(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.draining.Load():
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case s.fault("unready"):
		http.Error(w, "not ready (fault injected)", http.StatusServiceUnavailable)
	default:
		fmt.Fprintln(w, "ready")
	}
}

func (s *server) live() bool {
	b, err := os.ReadFile(s.activeFile)
	return err == nil && strings.TrimSpace(string(b)) == s.color
}

func (s *server) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"color":    s.color,
		"version":  s.version,
		"live":     s.live(),
		"draining": s.draining.Load(),
		"pid":      os.Getpid(),
		"uptime_s": int(time.Since(s.started).Seconds()),
	})
}

// slow holds a request open for ?ms= milliseconds (at most a minute); the drain test uses it.
func (s *server) slow(w http.ResponseWriter, r *http.Request) {
	ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
	if ms < 0 || ms > 60000 {
		ms = 60000
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	fmt.Fprintf(w, "%s %s slept %dms\n", s.color, s.version, ms)
}

func (s *server) hello(w http.ResponseWriter, _ *http.Request) {
	if s.fault("error500") {
		http.Error(w, s.color+" "+s.version+" failing (fault injected)", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "%s %s\n", s.color, s.version)
}
