package allocator

import "context"

// EnsureNetwork exposes ensureNetwork to the package's external tests.
func (d *Docker) EnsureNetwork(ctx context.Context, dep, image string) (string, error) {
	return d.ensureNetwork(ctx, dep, image)
}
