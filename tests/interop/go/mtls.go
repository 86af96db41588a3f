package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// The line protocol between dial and serve, one line each way per step:
//
//	client: greeting        server: the same line back
//	client: JWT-SVID        server: "valid <subject>" or "invalid <reason>"
const greeting = "hello over SPIFFE mTLS"

// session is a client's open connection to the server.
type session struct {
	conn  *tls.Conn
	lines *bufio.Reader
	// The server's SPIFFE ID, from its certificate.
	peer string
}

// connect completes the handshake from the client's side. With TLS 1.3 the server may still
// refuse the client's certificate after this returns: that shows as an error on the first read.
func connect(addr string, config *tls.Config) (*session, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, config)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	peer, err := peerID(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &session{conn: conn, lines: bufio.NewReader(conn), peer: peer}, nil
}

// exchange sends one line and returns the server's one-line answer.
func (s *session) exchange(line string) (string, error) {
	if err := writeLine(s.conn, line); err != nil {
		return "", err
	}
	return readLine(s.lines)
}

func (s *session) Close() {
	s.conn.Close()
}

func writeLine(conn *tls.Conn, line string) error {
	if strings.Contains(line, "\n") {
		return fmt.Errorf("a protocol line contains a newline: %q", line)
	}
	_, err := conn.Write([]byte(line + "\n"))
	return err
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// peerID is the SPIFFE ID in the URI SAN of the peer's leaf certificate.
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
