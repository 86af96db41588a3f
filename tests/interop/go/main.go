// Command interop talks to a SPIFFE Workload API with go-spiffe v2, the reference Go client.
//
// Lanyard's end-to-end test interop_go builds and runs it against a real Lanyard agent. The
// agent is found through SPIFFE_ENDPOINT_SOCKET, as any workload finds it; nothing here knows
// it is Lanyard. It prints one JSON object with what each step returned, and exits non-zero,
// naming the step, when a step the SPIFFE Workload API spec requires does not work.
//
// Usage: interop OUT_DIR AUDIENCE
//
// OUT_DIR receives svid.pem (leaf first), svid_key.pem and bundle.pem as go-spiffe marshals
// them, for `openssl verify`.
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

// Report is what the program prints.
type Report struct {
	X509 X509Report `json:"x509"`
	MTLS MTLSReport `json:"mtls"`
	JWT  JWTReport  `json:"jwt"`
}

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
	if len(os.Args) != 3 {
		fmt.Fprintf(os.Stderr, "usage: %s OUT_DIR AUDIENCE\n", os.Args[0])
		os.Exit(2)
	}
	report, err := run(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAILED: %v\n", err)
		os.Exit(1)
	}
	out, err := json.Marshal(report)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAILED: encode report: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}

func run(outDir, audience string) (*Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}

	// Both sources read SPIFFE_ENDPOINT_SOCKET and keep their stream to the agent open.
	x509Source, err := workloadapi.NewX509Source(ctx)
	if err != nil {
		return nil, fmt.Errorf("workloadapi.NewX509Source: %w", err)
	}
	defer x509Source.Close()
	jwtSource, err := workloadapi.NewJWTSource(ctx)
	if err != nil {
		return nil, fmt.Errorf("workloadapi.NewJWTSource: %w", err)
	}
	defer jwtSource.Close()
	client, err := workloadapi.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("workloadapi.New: %w", err)
	}
	defer client.Close()

	x509Report, id, err := x509Part(ctx, x509Source, client, outDir)
	if err != nil {
		return nil, err
	}
	mtlsReport, err := mtlsPart(x509Source, id)
	if err != nil {
		return nil, err
	}
	jwtReport, err := jwtPart(ctx, jwtSource, client, audience)
	if err != nil {
		return nil, err
	}
	return &Report{X509: *x509Report, MTLS: *mtlsReport, JWT: *jwtReport}, nil
}

func x509Part(
	ctx context.Context, source *workloadapi.X509Source, client *workloadapi.Client, outDir string,
) (*X509Report, spiffeid.ID, error) {
	svid, err := source.GetX509SVID()
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("X509Source.GetX509SVID: %w", err)
	}
	bundle, err := source.GetX509BundleForTrustDomain(svid.ID.TrustDomain())
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("X509Source.GetX509BundleForTrustDomain: %w", err)
	}

	certs, key, err := svid.Marshal()
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("x509svid.SVID.Marshal: %w", err)
	}
	roots, err := bundle.Marshal()
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("x509bundle.Bundle.Marshal: %w", err)
	}
	files := map[string][]byte{"svid.pem": certs, "svid_key.pem": key, "bundle.pem": roots}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(outDir, name), data, 0o600); err != nil {
			return nil, spiffeid.ID{}, err
		}
	}

	x509Context, err := client.FetchX509Context(ctx)
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("Client.FetchX509Context: %w", err)
	}
	bundles, err := client.FetchX509Bundles(ctx)
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("Client.FetchX509Bundles: %w", err)
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
	}, svid.ID, nil
}
