package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// DialReport is what dial prints.
type DialReport struct {
	X509 X509Report `json:"x509"`
	MTLS struct {
		// The server's SPIFFE ID after a handshake that authorized exactly SERVER_ID.
		ClientSawServer string `json:"client_saw_server"`
		Echo            string `json:"echo"`
		// The error of a client that authorizes only an ID the server does not have: proof
		// that the authorizer is consulted rather than any SVID from the bundle accepted.
		WrongIDError string `json:"wrong_id_error"`
	} `json:"mtls"`
	JWT JWTFetch `json:"jwt"`
}

// IntrudeReport is what intrude prints.
type IntrudeReport struct {
	SpiffeID string `json:"spiffe_id"`
	// The server's SPIFFE ID, if the client's side of the handshake completed.
	ClientSawServer string `json:"client_saw_server"`
	// How the refusal reached this client.
	Error string `json:"error"`
}

// dialMode runs the authorized client workload against the server at addr.
func dialMode(outDir, addr, rawServerID, audience string) (*DialReport, error) {
	serverID, err := parseID("SERVER_ID", rawServerID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w, err := openWorkload(ctx)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	report := &DialReport{}
	x509Report, err := w.x509Part(ctx, outDir)
	if err != nil {
		return nil, err
	}
	report.X509 = *x509Report

	svid, err := w.fetchJWT(ctx, audience)
	if err != nil {
		return nil, err
	}
	report.JWT = JWTFetch{
		SpiffeID:  svid.ID.String(),
		Audience:  svid.Audience,
		Claims:    svid.Claims,
		ExpiresIn: time.Until(svid.Expiry).Seconds(),
	}

	config := tlsconfig.MTLSClientConfig(w.x509, w.x509, tlsconfig.AuthorizeID(serverID))
	s, err := connect(addr, config)
	if err != nil {
		return nil, fmt.Errorf("mTLS handshake authorizing %s: %w", serverID, err)
	}
	defer s.Close()
	report.MTLS.ClientSawServer = s.peer
	if report.MTLS.Echo, err = s.exchange(greeting); err != nil {
		return nil, fmt.Errorf("echo over mTLS: %w", err)
	}
	if report.JWT.ServerVerdict, err = s.exchange(svid.Marshal()); err != nil {
		return nil, fmt.Errorf("sending the JWT-SVID over mTLS: %w", err)
	}

	wrong, err := spiffeid.FromSegments(serverID.TrustDomain(), "not", "this", "workload")
	if err != nil {
		return nil, err
	}
	wrongConfig := tlsconfig.MTLSClientConfig(w.x509, w.x509, tlsconfig.AuthorizeID(wrong))
	refused, err := connect(addr, wrongConfig)
	if err == nil {
		refused.Close()
		return nil, fmt.Errorf("a client authorizing only %s accepted the server %s",
			wrong, refused.peer)
	}
	report.MTLS.WrongIDError = err.Error()
	return report, nil
}

// intrudeMode connects as a workload the server does not authorize, itself accepting the
// server's real ID, and expects the server to refuse it.
func intrudeMode(addr, rawServerID string) (*IntrudeReport, error) {
	serverID, err := parseID("SERVER_ID", rawServerID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w, err := openWorkload(ctx)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	own, err := w.x509.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("X509Source.GetX509SVID: %w", err)
	}
	report := &IntrudeReport{SpiffeID: own.ID.String()}

	config := tlsconfig.MTLSClientConfig(w.x509, w.x509, tlsconfig.AuthorizeID(serverID))
	s, err := connect(addr, config)
	if err != nil {
		report.Error = err.Error()
		return report, nil
	}
	defer s.Close()
	report.ClientSawServer = s.peer
	echo, err := s.exchange(greeting)
	if err == nil {
		return nil, fmt.Errorf("the server let %s in and echoed %q", own.ID, echo)
	}
	report.Error = err.Error()
	return report, nil
}
