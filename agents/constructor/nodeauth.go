package constructor

import (
	"context"
	"errors"
	"fmt"

	"paddock/agents/node"
	"paddock/engine"
)

// The constructor calls nodes as the platform (user node.PlatformUser
// with the deployment's platform secret from /paddock/credentials/<id>),
// never with a customer's password. The executor puts the deployment
// id in the context of its node calls; HTTPNodes looks the secret up.

type deploymentKey struct{}

// WithDeployment marks ctx as acting for deployment id (the NodeAPI
// authenticates as the platform identity of that deployment).
func WithDeployment(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, deploymentKey{}, id)
}

func deploymentOf(ctx context.Context) string {
	id, _ := ctx.Value(deploymentKey{}).(string)
	return id
}

// StoreCredentials reads a deployment's platform credential from
// ZooKeeper (the constructor role may read /paddock/credentials). A
// deployment from before deployment security has none: its nodes are
// open and the call goes without.
func StoreCredentials(s *engine.Store) func(ctx context.Context, deploymentID string) (node.PlatformCredential, error) {
	return func(ctx context.Context, id string) (node.PlatformCredential, error) {
		var rec engine.DeploymentCredentials
		if _, err := s.GetJSON(ctx, engine.CredentialsPath(id), &rec); err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				return node.PlatformCredential{}, nil
			}
			return node.PlatformCredential{}, fmt.Errorf("read the platform credential of deployment %s: %w", id, err)
		}
		return node.PlatformCredential{Password: rec.PlatformSecret}, nil
	}
}
