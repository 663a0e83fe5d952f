package auth

import "testing"

// BenchmarkVerify measures one credential check with each default hash:
// the cost of a login, and of a guess.
func BenchmarkVerify(b *testing.B) {
	bc, err := HashBcrypt("password", DefaultBcryptCost)
	if err != nil {
		b.Fatal(err)
	}
	ar, err := HashArgon2id("password", DefaultArgon2Params())
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, hash string }{{"bcrypt12", bc}, {"argon2id-64MiB-t3-p4", ar}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if ok, err := VerifyHash(tc.hash, "password"); !ok || err != nil {
					b.Fatal("refused")
				}
			}
		})
	}
}
