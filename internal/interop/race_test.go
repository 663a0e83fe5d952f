//go:build race

package interop

// raceEnabled reports that the tests run with -race, so TestMain builds
// ferry with it too.
const raceEnabled = true
