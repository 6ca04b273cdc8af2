// Command loadgen is a minimal keep-alive HTTP load generator for the benchmark:
// it runs inside the e2e VM, so the VM's user-mode network is not in the path.
// Prints one JSON object: requests, 2xx, other statuses and transport errors, the slowest
// request, and samples of what failed (status or error, when, how long it took).
package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1/", "target")
	conns := flag.Int("c", 64, "keep-alive connections")
	dur := flag.Duration("d", 30*time.Second, "how long at most; SIGTERM stops it sooner")
	timeout := flag.Duration("timeout", 10*time.Second, "per request")
	insecure := flag.Bool("k", false, "https: accept any certificate (the test CA is not in the system's store)")
	host := flag.String("host", "", "Host header (and TLS server name) to send; empty: the URL's")
	flag.Parse()

	// A custom TLS config keeps HTTP/1.1 keep-alive (like wrk): Go only tries HTTP/2 by default.
	// Go's transport takes the TLS server name from the URL, not from req.Host: set it, so
	// an https load on 127.0.0.1 sends the site's SNI (no SNI at all for an IP).
	tr := &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns, DisableCompression: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: *insecure, ServerName: *host}}
	client := &http.Client{Transport: tr, Timeout: *timeout}
	// Go's client silently resends a GET whose kept-alive connection the server closed before
	// answering (as browsers do); wrk counts that as an error. "retried" counts those resends,
	// seen as a second connection taken for one request.
	var requests, ok, non2xx, resets, timeouts, otherErrs, retried atomic.Int64
	var mu sync.Mutex
	samples := map[string]int{}
	var slowest time.Duration
	began := time.Now()
	// sample records one failure: what, at which second of the run and after how long.
	sample := func(what string, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if len(samples) < 8 {
			samples[fmt.Sprintf("%s (at %.1fs, after %.1fs)", what, time.Since(began).Seconds(), took.Seconds())]++
		}
	}
	var stopped atomic.Bool
	time.AfterFunc(*dur, func() { stopped.Store(true) })
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; stopped.Store(true) }()
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped.Load() {
				requests.Add(1)
				req, err := http.NewRequest("GET", *url, nil)
				if err != nil {
					panic(err)
				}
				if *host != "" {
					req.Host = *host
				}
				var conns atomic.Int32
				trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { conns.Add(1) }}
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
				sent := time.Now()
				resp, err := client.Do(req)
				took := time.Since(sent)
				mu.Lock()
				if took > slowest {
					slowest = took
				}
				mu.Unlock()
				if conns.Load() > 1 {
					retried.Add(1)
				}
				if err != nil {
					var ne net.Error
					switch {
					case errors.As(err, &ne) && ne.Timeout():
						timeouts.Add(1)
					case strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "broken pipe"):
						resets.Add(1)
					default:
						otherErrs.Add(1)
					}
					sample(err.Error(), took)
					continue
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					ok.Add(1)
				} else {
					non2xx.Add(1)
					first, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
					if len(first) > 60 {
						first = first[:60]
					}
					sample(fmt.Sprintf("HTTP %d %q server=%q", resp.StatusCode, first, resp.Header.Get("Server")), took)
				}
			}
		}()
	}
	wg.Wait()
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false)
	_ = out.Encode(map[string]any{
		"requests": requests.Load(), "ok": ok.Load(), "non2xx": non2xx.Load(),
		"resets": resets.Load(), "timeouts": timeouts.Load(), "other": otherErrs.Load(), "retried": retried.Load(),
		"slowestMs": slowest.Milliseconds(), "samples": samples,
	})
}
