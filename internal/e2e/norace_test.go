//go:build !race

package e2e

// raceEnabled reports that the tests run with -race, so TestMain builds
// ferry with it too.
const raceEnabled = false
