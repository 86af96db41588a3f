package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// JWTReport describes a JWT-SVID fetched through the JWTSource and validated three ways.
type JWTReport struct {
	SpiffeID string         `json:"spiffe_id"`
	Claims   map[string]any `json:"claims"`
	// jwtsvid.ParseAndValidate with the JWTSource (the agent's JWT bundles) as bundle source.
	ValidatedLocally string `json:"validated_locally"`
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

func jwtPart(
	ctx context.Context, source *workloadapi.JWTSource, client *workloadapi.Client, audience string,
) (*JWTReport, error) {
	svid, err := source.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audience})
	if err != nil {
		return nil, fmt.Errorf("JWTSource.FetchJWTSVID: %w", err)
	}
	token := svid.Marshal()

	local, err := jwtsvid.ParseAndValidate(token, source, []string{audience})
	if err != nil {
		return nil, fmt.Errorf("jwtsvid.ParseAndValidate with the JWTSource: %w", err)
	}
	byAgent, err := client.ValidateJWTSVID(ctx, token, audience)
	if err != nil {
		return nil, fmt.Errorf("Client.ValidateJWTSVID: %w", err)
	}
	report := &JWTReport{
		SpiffeID:         svid.ID.String(),
		Claims:           local.Claims,
		ValidatedLocally: local.ID.String(),
		ValidatedByAgent: byAgent.ID.String(),
		ExpiresIn:        time.Until(local.Expiry).Seconds(),
	}

	if _, err := client.ValidateJWTSVID(ctx, token, audience+"-not-this-one"); err != nil {
		report.WrongAudienceError = err.Error()
	}
	if _, err := jwtsvid.ParseAndValidate(tamper(token), source, []string{audience}); err != nil {
		report.TamperedError = err.Error()
	}

	bundles, err := client.FetchJWTBundles(ctx)
	if err != nil {
		return nil, fmt.Errorf("Client.FetchJWTBundles: %w", err)
	}
	bundle, err := bundles.GetJWTBundleForTrustDomain(svid.ID.TrustDomain())
	if err != nil {
		return nil, fmt.Errorf("Client.FetchJWTBundles: %w", err)
	}
	for kid := range bundle.JWTAuthorities() {
		report.BundleKeyIDs = append(report.BundleKeyIDs, kid)
	}
	sort.Strings(report.BundleKeyIDs)
	return report, nil
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
