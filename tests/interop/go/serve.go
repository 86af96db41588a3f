package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// ServeReport is what serve prints when its stdin closes.
type ServeReport struct {
	X509 X509Report `json:"x509"`
	// One entry per accepted connection, in the order they came.
	Connections []ConnReport `json:"connections"`
}

// ConnReport describes one connection the server accepted.
type ConnReport struct {
	// The client's SPIFFE ID, when the handshake authorized it.
	Peer string `json:"peer,omitempty"`
	// Why the connection failed, from the handshake on: a refused client shows up here.
	Error string `json:"error,omitempty"`
	// The line the server echoed back.
	Echo string `json:"echo,omitempty"`
	// How the server validated the JWT-SVID the client sent.
	JWT *JWTCheck `json:"jwt,omitempty"`
}

// serveMode runs the server workload until stdin closes.
func serveMode(outDir, rawClientID, audience string) (*ServeReport, error) {
	clientID, err := parseID("CLIENT_ID", rawClientID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	w, err := openWorkload(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	defer w.Close()
	x509Report, err := w.x509Part(ctx, outDir)
	cancel()
	if err != nil {
		return nil, err
	}

	// Only the one client ID is authorized; the X509Source serves both this side's SVID and
	// the bundle the client's chain is verified against. Loopback only.
	config := tlsconfig.MTLSServerConfig(w.x509, w.x509, tlsconfig.AuthorizeID(clientID))
	listener, err := tls.Listen("tcp", "127.0.0.1:0", config)
	if err != nil {
		return nil, fmt.Errorf("tls.Listen with tlsconfig.MTLSServerConfig: %w", err)
	}
	if err := emit(map[string]string{"addr": listener.Addr().String()}); err != nil {
		listener.Close()
		return nil, err
	}
	go func() {
		// The test closes stdin once its clients are done; that ends the accept loop.
		_, _ = io.Copy(io.Discard, os.Stdin)
		listener.Close()
	}()

	report := &ServeReport{X509: *x509Report, Connections: []ConnReport{}}
	for {
		conn, err := listener.Accept()
		if err != nil {
			break
		}
		report.Connections = append(report.Connections, w.handle(conn.(*tls.Conn), audience))
	}
	return report, nil
}

// handle serves one client: echo one line, then validate the JWT-SVID on the next line and
// answer with the verdict. Connections are handled one at a time, so the report keeps their
// order.
func (w *workload) handle(conn *tls.Conn, audience string) ConnReport {
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	_ = conn.SetDeadline(deadline)
	if err := conn.Handshake(); err != nil {
		return ConnReport{Error: err.Error()}
	}
	peer, err := peerID(conn)
	if err != nil {
		return ConnReport{Error: err.Error()}
	}
	report := ConnReport{Peer: peer}

	lines := bufio.NewReader(conn)
	greeting, err := readLine(lines)
	if err == nil {
		report.Echo = greeting
		err = writeLine(conn, greeting)
	}
	var token string
	if err == nil {
		token, err = readLine(lines)
	}
	if err != nil {
		report.Error = err.Error()
		return report
	}

	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	check, err := w.checkJWT(ctx, token, audience)
	verdict := "valid " + check.Subject
	if err != nil {
		report.Error = err.Error()
		verdict = "invalid " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	report.JWT = check
	if err := writeLine(conn, verdict); err != nil && report.Error == "" {
		report.Error = err.Error()
	}
	return report
}
