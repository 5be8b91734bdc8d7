package backup_test

import (
	"os"
	"testing"

	"paddock/engine/zktest"
)

var env *zktest.Env

func TestMain(m *testing.M) { os.Exit(zktest.Main(m, 1, &env)) }
