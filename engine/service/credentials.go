package service

import (
	"context"
	"errors"
	"time"

	"paddock/engine"
)

// Credentials are a deployment's superuser credentials, shown once: in
// the create answer and in a reset-password answer. Nothing stores or
// logs the password; ZooKeeper keeps its bcrypt hash only.
type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// String hides the password (a Credentials printed by mistake shows no
// secret).
func (c Credentials) String() string { return c.Username + ":<redacted>" }

// SecurityView is what may be shown of a deployment's credentials:
// whether its password was ever reset, never the password.
type SecurityView struct {
	Username      string     `json:"username"`
	PasswordReset bool       `json:"password_reset"`
	Resets        int        `json:"password_resets"`
	ResetAt       *time.Time `json:"password_reset_at,omitempty"`
}

// ResetPasswordResult answers a reset-password request (ECE's shape:
// username and password).
type ResetPasswordResult struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// newSuperUser is engine.NewSuperUser within the service's hash slots
// (see Service.hashSlots).
func (s *Service) newSuperUser(ctx context.Context) (string, engine.CredentialUser, error) {
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return "", engine.CredentialUser{}, ctx.Err()
	}
	defer func() { <-s.hashSlots }()
	return engine.NewSuperUser()
}

// newCredentials generates a deployment's first credentials: the
// elastic password (returned once) and the record holding its hash and
// a platform secret.
func (s *Service) newCredentials(ctx context.Context, now time.Time) (Credentials, engine.DeploymentCredentials, error) {
	pw, user, err := s.newSuperUser(ctx)
	if err != nil {
		return Credentials{}, engine.DeploymentCredentials{}, err
	}
	rec := engine.DeploymentCredentials{Users: []engine.CredentialUser{user}, PlatformSecret: engine.RandomToken(24), CreatedAt: now}
	return Credentials{Username: engine.SuperUser, Password: pw}, rec, nil
}

// ensureCredentialsParent creates /paddock/credentials on a platform
// bootstrapped before deployment security.
func (s *Service) ensureCredentialsParent(ctx context.Context) error {
	return s.store.EnsurePath(ctx, engine.PathCredentials)
}

// ResetPassword issues a new elastic password for deployment id: the
// hash replaces the old one (compare-and-set), the allocators hand it to
// the nodes, and the password is returned once.
func (s *Service) ResetPassword(ctx context.Context, id string, actor Actor) (ResetPasswordResult, error) {
	if err := checkID(id); err != nil {
		return ResetPasswordResult{}, err
	}
	if ok, _, err := s.store.Exists(ctx, engine.DeploymentPath(id)); err != nil {
		return ResetPasswordResult{}, storeErr(err, "deployment", id)
	} else if !ok {
		return ResetPasswordResult{}, notFound("deployment", id)
	}
	pw, user, err := s.newSuperUser(ctx)
	if err != nil {
		return ResetPasswordResult{}, err
	}
	now := s.now()
	for attempt := 0; ; attempt++ {
		var rec engine.DeploymentCredentials
		ver, err := s.store.GetJSON(ctx, engine.CredentialsPath(id), &rec)
		missing := errors.Is(err, engine.ErrNotFound)
		if err != nil && !missing {
			return ResetPasswordResult{}, storeErr(err, "deployment", id)
		}
		if missing {
			// A deployment from before deployment security.
			if err := s.ensureCredentialsParent(ctx); err != nil {
				return ResetPasswordResult{}, storeErr(err, "deployment", id)
			}
			rec = engine.DeploymentCredentials{PlatformSecret: engine.RandomToken(24), CreatedAt: now}
		}
		rec.Users = replaceUser(rec.Users, user)
		rec.Resets++
		rec.ResetAt = &now
		if missing {
			err = s.store.Create(ctx, engine.CredentialsPath(id), rec)
		} else {
			err = s.store.Multi(ctx, engine.OpSet(engine.CredentialsPath(id), rec, ver))
		}
		if err == nil {
			break
		}
		if attempt < 3 && (errors.Is(err, engine.ErrExists) || errors.Is(err, engine.ErrConflict)) {
			continue
		}
		return ResetPasswordResult{}, storeErr(err, "deployment", id)
	}
	s.log.Info("deployment password reset", "deployment", id, "user", engine.SuperUser, "by", string(actor))
	return ResetPasswordResult{Username: engine.SuperUser, Password: pw}, nil
}

func replaceUser(users []engine.CredentialUser, u engine.CredentialUser) []engine.CredentialUser {
	out := []engine.CredentialUser{u}
	for _, x := range users {
		if x.Username != u.Username {
			out = append(out, x)
		}
	}
	return out
}

// Security reads what may be shown of a deployment's credentials (nil
// for a deployment from before deployment security).
func (s *Service) Security(ctx context.Context, id string) (*SecurityView, error) {
	var rec engine.DeploymentCredentials
	if _, err := s.store.GetJSON(ctx, engine.CredentialsPath(id), &rec); err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return nil, nil
		}
		return nil, storeErr(err, "deployment", id)
	}
	return &SecurityView{Username: engine.SuperUser, PasswordReset: rec.Resets > 0, Resets: rec.Resets, ResetAt: rec.ResetAt}, nil
}
