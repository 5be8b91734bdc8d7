package agentkit

import (
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces file with b (mode) through a temporary file of
// its own in the same directory: readers see the old or the new content,
// never a part, and agents of one host that share a state dir may write
// the same file at once.
func WriteFileAtomic(file string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), file)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
