package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
)

// JWTCheck describes how the server validated the JWT-SVID a client sent it, with bundles
// and calls from its own agent connection: the token was issued to another workload.
type JWTCheck struct {
	// jwtsvid.ParseAndValidate with the JWTSource (the streamed JWT bundles).
	Subject string         `json:"subject"`
	Claims  map[string]any `json:"claims"`
	// jwtsvid.ParseAndValidate with the set from Client.FetchJWTBundles (the one-shot call).
	ValidatedWithFetchedBundles string `json:"validated_with_fetched_bundles"`
	// Client.ValidateJWTSVID: the agent validates it.
	ValidatedByAgent string `json:"validated_by_agent"`
	// Client.ValidateJWTSVID for an audience the token was not issued for.
	WrongAudienceError string `json:"wrong_audience_error"`
	// jwtsvid.ParseAndValidate of the token with its signature altered.
	TamperedError string `json:"tampered_error"`
	// Key IDs of the JWT bundle for the token's trust domain, from Client.FetchJWTBundles.
	BundleKeyIDs []string `json:"bundle_key_ids"`
	ExpiresIn    float64  `json:"expires_in_seconds"`
}

// JWTFetch describes the JWT-SVID a client fetched through its JWTSource and sent the server.
type JWTFetch struct {
	SpiffeID  string         `json:"spiffe_id"`
	Audience  []string       `json:"audience"`
	Claims    map[string]any `json:"claims"`
	ExpiresIn float64        `json:"expires_in_seconds"`
	// The server's answer: "valid <subject>" or "invalid <reason>".
	ServerVerdict string `json:"server_verdict"`
}

// fetchJWT gets a JWT-SVID for audience through the JWTSource.
func (w *workload) fetchJWT(ctx context.Context, audience string) (*jwtsvid.SVID, error) {
	svid, err := w.jwt.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audience})
	if err != nil {
		return nil, fmt.Errorf("JWTSource.FetchJWTSVID: %w", err)
	}
	return svid, nil
}

// checkJWT validates another workload's token for audience. The returned check is never nil:
// on error it holds what was established before the failing step.
func (w *workload) checkJWT(ctx context.Context, token, audience string) (*JWTCheck, error) {
	check := &JWTCheck{}
	local, err := jwtsvid.ParseAndValidate(token, w.jwt, []string{audience})
	if err != nil {
		return check, fmt.Errorf("jwtsvid.ParseAndValidate with the JWTSource: %w", err)
	}
	check.Subject = local.ID.String()
	check.Claims = local.Claims
	check.ExpiresIn = time.Until(local.Expiry).Seconds()

	bundles, err := w.client.FetchJWTBundles(ctx)
	if err != nil {
		return check, fmt.Errorf("Client.FetchJWTBundles: %w", err)
	}
	fetched, err := jwtsvid.ParseAndValidate(token, bundles, []string{audience})
	if err != nil {
		return check, fmt.Errorf("jwtsvid.ParseAndValidate with Client.FetchJWTBundles: %w", err)
	}
	check.ValidatedWithFetchedBundles = fetched.ID.String()
	bundle, err := bundles.GetJWTBundleForTrustDomain(local.ID.TrustDomain())
	if err != nil {
		return check, fmt.Errorf("Client.FetchJWTBundles: %w", err)
	}
	for kid := range bundle.JWTAuthorities() {
		check.BundleKeyIDs = append(check.BundleKeyIDs, kid)
	}
	sort.Strings(check.BundleKeyIDs)

	byAgent, err := w.client.ValidateJWTSVID(ctx, token, audience)
	if err != nil {
		return check, fmt.Errorf("Client.ValidateJWTSVID: %w", err)
	}
	check.ValidatedByAgent = byAgent.ID.String()

	// The negative checks report what refused the token; the test judges the reason.
	if _, err := w.client.ValidateJWTSVID(ctx, token, audience+"-not-this-one"); err != nil {
		check.WrongAudienceError = err.Error()
	}
	if _, err := jwtsvid.ParseAndValidate(tamper(token), w.jwt, []string{audience}); err != nil {
		check.TamperedError = err.Error()
	}
	return check, nil
}

// tamper changes the first character of the signature, keeping the token well formed.
func tamper(token string) string {
	for i := len(token) - 1; i >= 0; i-- {
		if token[i] == '.' {
			flipped := byte('A')
			if token[i+1] == 'A' {
				flipped = 'B'
			}
			return token[:i+1] + string(flipped) + token[i+2:]
		}
	}
	return token
}
