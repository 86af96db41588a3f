// Command interop is a SPIFFE workload written with go-spiffe v2, the reference Go client.
//
// Lanyard's end-to-end test interop_go builds it once, copies the binary to several paths and
// runs each copy as a separate workload: a Lanyard agent's unix attestor tells them apart by
// their `unix:path:` selector, so each gets its own SPIFFE ID. The agent is found through
// SPIFFE_ENDPOINT_SOCKET, as any workload finds it; nothing here knows it is Lanyard. Each mode
// prints JSON describing what each step returned, and exits non-zero, naming the step, when a
// step the SPIFFE specs require does not work.
//
// Usage:
//
//	interop serve OUT_DIR CLIENT_ID AUDIENCE
//	interop dial OUT_DIR ADDR SERVER_ID AUDIENCE
//	interop intrude ADDR SERVER_ID
//
// serve listens on 127.0.0.1:0 for mTLS clients whose SPIFFE ID is CLIENT_ID, prints one line
// {"addr": ...} once it accepts connections, and, when its stdin reaches end of file, stops and
// prints its report. It validates the JWT-SVID each authorized client sends for AUDIENCE.
//
// dial connects to the server at ADDR, accepting only SERVER_ID, exchanges an echo and sends a
// JWT-SVID for AUDIENCE; it then checks that a client accepting another ID refuses the server.
//
// intrude connects to the server as a workload the server does not authorize, and reports the
// refusal.
//
// serve and dial write svid.pem (leaf first), svid_key.pem and bundle.pem to OUT_DIR as
// go-spiffe marshals them, for `openssl verify`.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// Generous for a loaded CI machine, finite so that a hung call fails the test with a reason.
const timeout = 30 * time.Second

// X509Report describes the X.509 context from the X509Source and the one-shot client calls.
type X509Report struct {
	SpiffeID                string   `json:"spiffe_id"`
	ChainLength             int      `json:"chain_length"`
	BundleAuthorities       int      `json:"bundle_authorities"`
	ContextSVIDs            int      `json:"context_svids"`
	ContextBundleDomains    []string `json:"context_bundle_trust_domains"`
	FetchX509BundlesDomains []string `json:"fetch_x509_bundles_trust_domains"`
}

func main() {
	report, err := dispatch(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAILED: %v\n", err)
		os.Exit(1)
	}
	if err := emit(report); err != nil {
		fmt.Fprintf(os.Stderr, "FAILED: %v\n", err)
		os.Exit(1)
	}
}

func dispatch(args []string) (any, error) {
	switch {
	case len(args) == 4 && args[0] == "serve":
		return serveMode(args[1], args[2], args[3])
	case len(args) == 5 && args[0] == "dial":
		return dialMode(args[1], args[2], args[3], args[4])
	case len(args) == 3 && args[0] == "intrude":
		return intrudeMode(args[1], args[2])
	}
	fmt.Fprintf(os.Stderr, "usage: %[1]s serve OUT_DIR CLIENT_ID AUDIENCE\n"+
		"       %[1]s dial OUT_DIR ADDR SERVER_ID AUDIENCE\n"+
		"       %[1]s intrude ADDR SERVER_ID\n", os.Args[0])
	os.Exit(2)
	return nil, nil
}

// emit prints one JSON line on stdout.
func emit(v any) error {
	out, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = fmt.Println(string(out))
	return err
}

// workload is this process's connection to the Workload API: two streaming sources, which keep
// their streams to the agent open, and a client for one-shot calls.
type workload struct {
	x509   *workloadapi.X509Source
	jwt    *workloadapi.JWTSource
	client *workloadapi.Client
}

// openWorkload connects the sources and the client; all three read SPIFFE_ENDPOINT_SOCKET.
func openWorkload(ctx context.Context) (*workload, error) {
	w := &workload{}
	var err error
	if w.x509, err = workloadapi.NewX509Source(ctx); err != nil {
		return nil, fmt.Errorf("workloadapi.NewX509Source: %w", err)
	}
	if w.jwt, err = workloadapi.NewJWTSource(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("workloadapi.NewJWTSource: %w", err)
	}
	if w.client, err = workloadapi.New(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("workloadapi.New: %w", err)
	}
	return w, nil
}

func (w *workload) Close() {
	if w.client != nil {
		w.client.Close()
	}
	if w.jwt != nil {
		w.jwt.Close()
	}
	if w.x509 != nil {
		w.x509.Close()
	}
}

// x509Part reports this workload's X.509 context and writes its SVID and bundle to outDir.
func (w *workload) x509Part(ctx context.Context, outDir string) (*X509Report, error) {
	svid, err := w.x509.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("X509Source.GetX509SVID: %w", err)
	}
	bundle, err := w.x509.GetX509BundleForTrustDomain(svid.ID.TrustDomain())
	if err != nil {
		return nil, fmt.Errorf("X509Source.GetX509BundleForTrustDomain: %w", err)
	}
	if err := writePEMs(outDir, svid.Marshal, bundle.Marshal); err != nil {
		return nil, err
	}

	x509Context, err := w.client.FetchX509Context(ctx)
	if err != nil {
		return nil, fmt.Errorf("Client.FetchX509Context: %w", err)
	}
	bundles, err := w.client.FetchX509Bundles(ctx)
	if err != nil {
		return nil, fmt.Errorf("Client.FetchX509Bundles: %w", err)
	}
	var contextDomains, fetchedDomains []string
	for _, b := range x509Context.Bundles.Bundles() {
		contextDomains = append(contextDomains, b.TrustDomain().String())
	}
	for _, b := range bundles.Bundles() {
		fetchedDomains = append(fetchedDomains, b.TrustDomain().String())
	}

	return &X509Report{
		SpiffeID:                svid.ID.String(),
		ChainLength:             len(svid.Certificates),
		BundleAuthorities:       len(bundle.X509Authorities()),
		ContextSVIDs:            len(x509Context.SVIDs),
		ContextBundleDomains:    contextDomains,
		FetchX509BundlesDomains: fetchedDomains,
	}, nil
}

// writePEMs writes what go-spiffe marshals for the SVID and the bundle, so that an independent
// tool can check them.
func writePEMs(
	outDir string, svid func() ([]byte, []byte, error), bundle func() ([]byte, error),
) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	certs, key, err := svid()
	if err != nil {
		return fmt.Errorf("x509svid.SVID.Marshal: %w", err)
	}
	roots, err := bundle()
	if err != nil {
		return fmt.Errorf("x509bundle.Bundle.Marshal: %w", err)
	}
	files := map[string][]byte{"svid.pem": certs, "svid_key.pem": key, "bundle.pem": roots}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(outDir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// parseID parses a SPIFFE ID given on the command line.
func parseID(what, raw string) (spiffeid.ID, error) {
	id, err := spiffeid.FromString(raw)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("%s %q: %w", what, raw, err)
	}
	return id, nil
}
