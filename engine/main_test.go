package engine_test

import (
	"os"
	"testing"

	"paddock/engine/zktest"
)

// env is the standalone ZooKeeper shared by this package's tests.
var env *zktest.Env

func TestMain(m *testing.M) { os.Exit(zktest.Main(m, 1, &env)) }
