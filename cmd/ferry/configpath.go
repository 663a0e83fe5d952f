package main

import (
	"fmt"
	"os"
)

// systemConfigFile is the configuration of an installed Ferry: "ferry
// serve" and every admin command read it when no --config is given and
// FERRY_CONFIG is not set.
const systemConfigFile = "/etc/ferry/ferry.toml"

// configEnv names the environment variable that replaces systemConfigFile
// (FERRY_CONFIG=/dev/null: the built-in defaults, even where
// /etc/ferry/ferry.toml exists).
const configEnv = "FERRY_CONFIG"

// findConfig returns the configuration file to read: given (--config)
// when not empty, else $FERRY_CONFIG when set (an empty or missing one is
// an error), else system when it exists, else "" for the built-in
// defaults. lookup is os.LookupEnv outside tests.
func findConfig(given string, lookup func(string) (string, bool), system string) (string, error) {
	if given != "" {
		return given, nil
	}
	if env, ok := lookup(configEnv); ok {
		if env == "" {
			return "", fmt.Errorf("%s is set but empty: give a configuration file, or unset it", configEnv)
		}
		if _, err := os.Stat(env); err != nil {
			return "", fmt.Errorf("%s=%s: %w", configEnv, env, err)
		}
		return env, nil
	}
	if _, err := os.Stat(system); err == nil {
		return system, nil
	}
	return "", nil
}

// configFile is findConfig for this process: the file that --config
// (given), FERRY_CONFIG or /etc/ferry/ferry.toml names.
func configFile(given string) (string, error) {
	return findConfig(given, os.LookupEnv, systemConfigFile)
}
