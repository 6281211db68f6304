package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/diskport/diskport/server/store"
)

// NewAccessKey makes a new key pair: an id of "AKIA" and 16 characters
// from A-Z and 2-7 (as AWS's), and a 40-character secret from 30 random
// bytes.
func NewAccessKey() *store.AccessKey {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var id strings.Builder
	id.WriteString("AKIA")
	for range 16 {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		id.WriteByte(alphabet[n.Int64()])
	}
	secret := make([]byte, 30)
	rand.Read(secret)
	return &store.AccessKey{ID: id.String(), Secret: base64.StdEncoding.EncodeToString(secret), Created: time.Now().UTC()}
}

// newAccountID returns a random 12-digit account number.
func newAccountID() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1e12))
	return fmt.Sprintf("%012d", n.Int64())
}

// AddAccount creates an account named name with a new key pair.
func AddAccount(ctx context.Context, st store.Store, name string) (*store.Account, *store.AccessKey, error) {
	return addAccount(ctx, st, name, NewAccessKey())
}

func addAccount(ctx context.Context, st store.Store, name string, key *store.AccessKey) (*store.Account, *store.AccessKey, error) {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, " \t\n/") {
		return nil, nil, fmt.Errorf("server: account name %q: want 1 to 64 characters without spaces or slashes", name)
	}
	a := &store.Account{ID: newAccountID(), Name: name, Created: time.Now().UTC()}
	key.AccountID = a.ID
	if err := st.CreateAccount(ctx, a, key); err != nil {
		return nil, nil, err
	}
	return a, key, nil
}

// FirstAccount creates the first account, named "default", when the
// store has none: with the key pair given (from DISKPORT_ACCESS_KEY_ID and
// DISKPORT_SECRET_ACCESS_KEY) or, when both are empty, a generated one. It
// returns the new key pair and whether it was generated, or a nil key when
// accounts exist already.
func FirstAccount(ctx context.Context, st store.Store, accessKeyID, secret string) (key *store.AccessKey, generated bool, err error) {
	n, err := st.AccountCount(ctx)
	if err != nil || n > 0 {
		return nil, false, err
	}
	switch {
	case accessKeyID == "" && secret == "":
		key, generated = NewAccessKey(), true
	case accessKeyID == "" || secret == "":
		return nil, false, errors.New("server: set both DISKPORT_ACCESS_KEY_ID and DISKPORT_SECRET_ACCESS_KEY, or neither")
	case len(accessKeyID) < 3 || len(accessKeyID) > 128 || len(secret) < 8 || len(secret) > 128:
		return nil, false, errors.New("server: DISKPORT_ACCESS_KEY_ID must be 3 to 128 characters and DISKPORT_SECRET_ACCESS_KEY 8 to 128")
	default:
		key = &store.AccessKey{ID: accessKeyID, Secret: secret, Created: time.Now().UTC()}
	}
	if _, _, err := addAccount(ctx, st, "default", key); err != nil {
		return nil, false, err
	}
	return key, generated, nil
}

// RotateKey gives the account named name a new key pair in place of all
// its others, which every server sharing the store refuses from the next
// request on.
func RotateKey(ctx context.Context, st store.Store, name string) (*store.Account, *store.AccessKey, error) {
	k := NewAccessKey()
	a, err := st.RotateKey(ctx, name, k)
	if err != nil {
		return nil, nil, err
	}
	return a, k, nil
}
