package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// MTLSReport describes the handshakes between a server and a client that both hold the SVID
// the agent served, and both authorize the peer by SPIFFE ID with tlsconfig.AuthorizeID.
type MTLSReport struct {
	// What each side saw as its peer's SPIFFE ID after a successful handshake.
	ServerSawClient string `json:"server_saw_client"`
	ClientSawServer string `json:"client_saw_server"`
	// The message the server echoed back over the mutually authenticated connection.
	Echo string `json:"echo"`
	// The client's error when it authorizes only an ID the server does not have: proof that
	// the authorizer is consulted rather than any SVID from the bundle accepted.
	WrongIDError string `json:"wrong_id_error"`
}

const greeting = "hello over SPIFFE mTLS"

func mtlsPart(source *workloadapi.X509Source, id spiffeid.ID) (*MTLSReport, error) {
	// Loopback only: both ends live in this process.
	serverConfig := tlsconfig.MTLSServerConfig(source, source, tlsconfig.AuthorizeID(id))
	listener, err := tls.Listen("tcp", "127.0.0.1:0", serverConfig)
	if err != nil {
		return nil, fmt.Errorf("tls.Listen with tlsconfig.MTLSServerConfig: %w", err)
	}
	defer listener.Close()
	addr := listener.Addr().String()

	served := make(chan serverResult, 2)
	go serve(listener, served)

	report := &MTLSReport{}
	clientConfig := tlsconfig.MTLSClientConfig(source, source, tlsconfig.AuthorizeID(id))
	peer, echo, err := dial(addr, clientConfig)
	if err != nil {
		return nil, fmt.Errorf("mTLS client handshake authorizing %s: %w", id, err)
	}
	report.ClientSawServer, report.Echo = peer, echo
	first := <-served
	if first.err != nil {
		return nil, fmt.Errorf("mTLS server side: %w", first.err)
	}
	report.ServerSawClient = first.peer

	wrong, err := spiffeid.FromSegments(id.TrustDomain(), "not", "this", "workload")
	if err != nil {
		return nil, err
	}
	_, _, err = dial(addr, tlsconfig.MTLSClientConfig(source, source, tlsconfig.AuthorizeID(wrong)))
	if err == nil {
		return nil, fmt.Errorf("mTLS client authorizing only %s accepted a server that is %s", wrong, id)
	}
	report.WrongIDError = err.Error()
	// The server's side of the refused handshake fails too; its error is not needed.
	<-served
	return report, nil
}

type serverResult struct {
	peer string
	err  error
}

// serve accepts connections until the listener closes; each one echoes one line back.
func serve(listener net.Listener, results chan<- serverResult) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		results <- echoOnce(conn.(*tls.Conn))
	}
}

func echoOnce(conn *tls.Conn) serverResult {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if err := conn.Handshake(); err != nil {
		return serverResult{err: err}
	}
	peer, err := peerID(conn)
	if err != nil {
		return serverResult{err: err}
	}
	buf := make([]byte, len(greeting))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return serverResult{err: err}
	}
	if _, err := conn.Write(buf); err != nil {
		return serverResult{err: err}
	}
	return serverResult{peer: peer}
}

// dial handshakes, sends the greeting and returns the server's SPIFFE ID and its echo.
func dial(addr string, config *tls.Config) (string, string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, config)
	if err != nil {
		return "", "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	peer, err := peerID(conn)
	if err != nil {
		return "", "", err
	}
	if _, err := conn.Write([]byte(greeting)); err != nil {
		return "", "", err
	}
	buf := make([]byte, len(greeting))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return "", "", err
	}
	return peer, string(buf), nil
}

func peerID(conn *tls.Conn) (string, error) {
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", errors.New("the peer presented no certificate")
	}
	id, err := x509svid.IDFromCert(certs[0])
	if err != nil {
		return "", fmt.Errorf("the peer's certificate: %w", err)
	}
	return id.String(), nil
}
