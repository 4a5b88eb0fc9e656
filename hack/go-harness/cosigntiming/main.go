// cosigntiming verifies one cosign signature layer the way cosign does for `cosign verify` (its checks are
// Go's crypto/ecdsa and crypto/x509 underneath) and times it, for `make bench-gates`. Standard library only,
// built in GOPATH mode. The fixture is written by crates/tagpilot-core/examples/cosign_timing.rs (gen).
//
//	cosigntiming FIXTURE key|keyless
//
// prints "median_ns<TAB>result": the median of 15 samples of enough iterations to last ~40 ms, as the Rust
// side measures.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"time"
)

type fixture struct {
	Digest string `json:"digest"`
	Key    struct {
		PubPEM    string `json:"pub_pem"`
		Payload   string `json:"payload_b64"`
		Signature string `json:"signature_b64"`
	} `json:"key"`
	Keyless struct {
		Payload   string          `json:"payload_b64"`
		Signature string          `json:"signature_b64"`
		CertPEM   string          `json:"cert_pem"`
		Bundle    json.RawMessage `json:"bundle"`
		CA        string          `json:"ca_der_b64"`
		Rekor     string          `json:"rekor_pub_der_b64"`
		Issuer    string          `json:"issuer_re"`
		Subject   string          `json:"subject_re"`
	} `json:"keyless"`
}

type payload struct {
	Critical struct {
		Image struct {
			Digest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

func checkPayload(p []byte, digest string) error {
	var v payload
	if err := json.Unmarshal(p, &v); err != nil {
		return err
	}
	if v.Critical.Type != "cosign container image signature" || v.Critical.Image.Digest != digest {
		return errors.New("payload does not match")
	}
	return nil
}

func b64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

type bundle struct {
	SET     string `json:"SignedEntryTimestamp"`
	Payload struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

type entry struct {
	Spec struct {
		Data struct {
			Hash struct {
				Value string `json:"value"`
			} `json:"hash"`
		} `json:"data"`
		Signature struct {
			Content   string `json:"content"`
			PublicKey struct {
				Content string `json:"content"`
			} `json:"publicKey"`
		} `json:"signature"`
	} `json:"spec"`
}

var issuerOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var f fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		panic(err)
	}
	var check func() error
	switch os.Args[2] {
	case "key":
		block, _ := pem.Decode([]byte(f.Key.PubPEM))
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			panic(err)
		}
		key := pub.(*ecdsa.PublicKey)
		p, sig := b64(f.Key.Payload), b64(f.Key.Signature)
		check = func() error {
			h := sha256.Sum256(p)
			if !ecdsa.VerifyASN1(key, h[:], sig) {
				return errors.New("bad signature")
			}
			return checkPayload(p, f.Digest)
		}
	case "keyless":
		k := f.Keyless
		ca, err := x509.ParseCertificate(b64(k.CA))
		if err != nil {
			panic(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca)
		rekorPub, err := x509.ParsePKIXPublicKey(b64(k.Rekor))
		if err != nil {
			panic(err)
		}
		rekor := rekorPub.(*ecdsa.PublicKey)
		issuerRe := regexp.MustCompile("^(?:" + k.Issuer + ")$")
		subjectRe := regexp.MustCompile("^(?:" + k.Subject + ")$")
		p, sig := b64(k.Payload), b64(k.Signature)
		check = func() error {
			block, _ := pem.Decode([]byte(k.CertPEM))
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return err
			}
			var b bundle
			if err := json.Unmarshal(k.Bundle, &b); err != nil {
				return err
			}
			// SET over the canonical payload.
			bodyJSON, _ := json.Marshal(b.Payload.Body)
			logJSON, _ := json.Marshal(b.Payload.LogID)
			msg := `{"body":` + string(bodyJSON) + `,"integratedTime":` + strconv.FormatInt(b.Payload.IntegratedTime, 10) +
				`,"logID":` + string(logJSON) + `,"logIndex":` + strconv.FormatInt(b.Payload.LogIndex, 10) + `}`
			mh := sha256.Sum256([]byte(msg))
			if !ecdsa.VerifyASN1(rekor, mh[:], b64(b.SET)) {
				return errors.New("bad SET")
			}
			// The entry records this payload, signature and certificate.
			var e entry
			if err := json.Unmarshal(b64(b.Payload.Body), &e); err != nil {
				return err
			}
			ph := sha256.Sum256(p)
			if e.Spec.Data.Hash.Value != hex.EncodeToString(ph[:]) || !bytes.Equal(b64(e.Spec.Signature.Content), sig) {
				return errors.New("entry mismatch")
			}
			eb, _ := pem.Decode(b64(e.Spec.Signature.PublicKey.Content))
			if eb == nil || !bytes.Equal(eb.Bytes, cert.Raw) {
				return errors.New("entry certificate mismatch")
			}
			// The chain at the entry's time, for code signing.
			if _, err := cert.Verify(x509.VerifyOptions{
				Roots:       roots,
				CurrentTime: time.Unix(b.Payload.IntegratedTime, 0),
				KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
			}); err != nil {
				return err
			}
			// The identity.
			issuer := ""
			for _, ext := range cert.Extensions {
				if ext.Id.Equal(issuerOID) {
					if _, err := asn1.Unmarshal(ext.Value, &issuer); err != nil {
						return err
					}
				}
			}
			subjects := append(append([]string{}, cert.EmailAddresses...), func() []string {
				var u []string
				for _, x := range cert.URIs {
					u = append(u, x.String())
				}
				return u
			}()...)
			matched := false
			for _, s := range subjects {
				if issuerRe.MatchString(issuer) && subjectRe.MatchString(s) {
					matched = true
				}
			}
			if !matched {
				return errors.New("identity")
			}
			key := cert.PublicKey.(*ecdsa.PublicKey)
			if !ecdsa.VerifyASN1(key, ph[:], sig) {
				return errors.New("bad signature")
			}
			return checkPayload(p, f.Digest)
		}
	default:
		panic("key or keyless")
	}
	if err := check(); err != nil {
		fmt.Printf("0\terror: %v\n", err)
		return
	}
	iters := 1
	for {
		t := time.Now()
		for i := 0; i < iters; i++ {
			check()
		}
		if time.Since(t) > 40*time.Millisecond {
			break
		}
		iters *= 2
	}
	var samples []float64
	for s := 0; s < 15; s++ {
		t := time.Now()
		for i := 0; i < iters; i++ {
			check()
		}
		samples = append(samples, float64(time.Since(t).Nanoseconds())/float64(iters))
	}
	sort.Float64s(samples)
	fmt.Printf("%.0f\tverified\n", samples[7])
}
