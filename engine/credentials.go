package engine

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// PathCredentials holds each deployment's credentials (hashes only for
// customer passwords); see docs/architecture.md, "Deployment security".
var PathCredentials = Root + "/credentials"

// CredentialsPath returns /paddock/credentials/<deployment id>.
func CredentialsPath(id string) string { return PathCredentials + "/" + id }

// SuperUser is the superuser every deployment is created with.
const SuperUser = "elastic"

// PasswordLength is the length of generated deployment passwords.
const PasswordLength = 24

// DeploymentCredentials is /paddock/credentials/<id>: written by the
// admin role (create, reset-password), read by the constructor and the
// allocators (which hand it to the deployment's nodes). It never holds a
// customer password in clear: only its bcrypt hash.
type DeploymentCredentials struct {
	Users []CredentialUser `json:"users"`
	// PlatformSecret is the platform identity the constructor, the
	// allocators and the nodes' replication present to the nodes (user
	// "_paddock"): a random secret per deployment, never a customer's.
	PlatformSecret string `json:"platform_secret"`
	// Resets counts password resets; ResetAt is the last one.
	Resets    int        `json:"resets"`
	ResetAt   *time.Time `json:"reset_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// CredentialUser is a deployment user and its password's bcrypt hash.
type CredentialUser struct {
	Username     string `json:"username"`
	PasswordHash string `json:"password_hash"`
}

// alphabet of generated passwords: letters and digits only, so they
// survive shells, URLs and YAML unquoted.
const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// GeneratePassword returns a random password of PasswordLength
// characters from crypto/rand.
func GeneratePassword() (string, error) {
	out := make([]byte, PasswordLength)
	n := big.NewInt(int64(len(passwordAlphabet)))
	for i := range out {
		k, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", fmt.Errorf("generate a password: %w", err)
		}
		out[i] = passwordAlphabet[k.Int64()]
	}
	return string(out), nil
}

// HashPassword is the slow hash stored for a password.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash the password: %w", err)
	}
	return string(h), nil
}

// NewSuperUser returns a fresh elastic password and the user record
// holding its hash.
func NewSuperUser() (password string, user CredentialUser, err error) {
	if password, err = GeneratePassword(); err != nil {
		return "", user, err
	}
	h, err := HashPassword(password)
	if err != nil {
		return "", user, err
	}
	return password, CredentialUser{Username: SuperUser, PasswordHash: h}, nil
}
