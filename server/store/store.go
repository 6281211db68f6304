// Package store keeps the API server's durable state: accounts and their
// key pairs, conversion tasks (the legacy imports', and the modern
// ImportSnapshot, ImportImage, CreateVolume and export tasks), the
// volumes, snapshots and instances they create, images, tags, and bundle
// tasks.
//
// [Store] is the interface the server uses; [Open] returns the SQLite
// implementation (one database file in the data directory, WAL mode). The
// interface speaks in whole records and conditional state transitions, not
// SQL, so a store on a shared database (PostgreSQL) can implement it for
// several servers.
//
// Every read and write that a client's request causes names the account:
// one account never sees or changes another's rows. The only calls that
// cross accounts are those of the server itself: looking a key up by its
// id, and listing the unfinished tasks the conversion workers run.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a record does not exist or belongs to
// another account.
var ErrNotFound = errors.New("store: not found")

// ErrExists is returned when a record with the same id or name exists.
var ErrExists = errors.New("store: already exists")

// ErrState is returned by a conditional transition whose record was not
// in one of the expected states.
var ErrState = errors.New("store: record not in the expected state")

// An Account owns key pairs, tasks, volumes and instances.
type Account struct {
	// ID is the account's 12-digit number, as EC2's owner ids.
	ID string
	// Name is the operator's name for the account, unique.
	Name    string
	Created time.Time
}

// An AccessKey is one key pair of an account.
type AccessKey struct {
	// ID is the access key id (AKIA…); Secret the secret access key.
	ID, Secret string
	AccountID  string
	Created    time.Time
}

// A TaskState is a conversion task's state, as EC2 names it.
type TaskState string

// Conversion task states.
const (
	TaskActive     TaskState = "active"
	TaskCancelling TaskState = "cancelling"
	TaskCancelled  TaskState = "cancelled"
	TaskCompleted  TaskState = "completed"
)

// A TaskKind says which action made a conversion task.
type TaskKind string

// Kinds of conversion task.
const (
	KindVolume   TaskKind = "volume"   // ImportVolume
	KindInstance TaskKind = "instance" // ImportInstance
	KindSnapshot TaskKind = "snapshot" // ImportSnapshot
	KindImage    TaskKind = "image"    // ImportImage
	// KindCopy is CreateVolume's copy of a snapshot into a new volume:
	// a task like the others (leased, resumed after a crash), which no
	// Describe lists.
	KindCopy TaskKind = "copy"
	// KindExportImage is ExportImage's task, KindExportInstance
	// CreateInstanceExportTask's.
	KindExportImage    TaskKind = "export-image"
	KindExportInstance TaskKind = "export-instance"
)

// A VolumeKind says what a row of volumes is: a volume (DescribeVolumes)
// or a snapshot (DescribeSnapshots), which a modern import task makes.
type VolumeKind string

// Kinds of volume record.
const (
	KindVolumeDisk   VolumeKind = "volume"
	KindSnapshotDisk VolumeKind = "snapshot"
)

// A VolumeState is a volume's state, as EC2 names it.
type VolumeState string

// Volume states.
const (
	VolumeCreating  VolumeState = "creating"
	VolumeAvailable VolumeState = "available"
	VolumeInUse     VolumeState = "in-use"
	VolumeDeleted   VolumeState = "deleted"
)

// A ConversionStatus is the state of one volume's conversion within its
// task, as ImportInstance's volume status reports it.
type ConversionStatus string

// Conversion statuses.
const (
	ConversionActive    ConversionStatus = "active"
	ConversionCompleted ConversionStatus = "completed"
	ConversionCancelled ConversionStatus = "cancelled"
)

// An InstanceState is an instance's state, as EC2 names it.
type InstanceState string

// Instance states used here.
const (
	InstanceStopped    InstanceState = "stopped"
	InstanceTerminated InstanceState = "terminated"
)

// A Task is a conversion task: ImportVolume's or ImportInstance's.
type Task struct {
	ID, AccountID string
	Kind          TaskKind
	// StatusMessage says more than State.
	State            TaskState
	StatusMessage    string
	Description      string
	AvailabilityZone string
	// Platform and InstanceID are set for an ImportInstance task;
	// Platform for an ImportImage task too.
	Platform, InstanceID string
	// ClientToken is the client's idempotency token ("" for none) and
	// ParamsHash a digest of the request's other parameters: the same
	// token with other parameters is refused.
	ClientToken, ParamsHash string
	// ImageID, Architecture, LicenseType and BootMode are an ImportImage
	// task's: the ami- it registers when it completes, and its
	// attributes.
	ImageID, Architecture, LicenseType, BootMode string
	// ExportFormat (vmdk, vhd, raw), ExportContainer (ova or ""),
	// ExportTarget (vmware, citrix, microsoft), S3Bucket, S3Prefix and
	// RoleName are an export task's: what it writes, and where. Its
	// ImageID (ExportImage) or InstanceID (CreateInstanceExportTask) is
	// what it exports.
	ExportFormat, ExportContainer, ExportTarget string
	S3Bucket, S3Prefix, RoleName                string
	// Tags are stored with the task by CreateTask (they are read with
	// Tags, not with the task).
	Tags             []Tag
	Expiration       time.Time
	Created, Updated time.Time
	// LeaseOwner is the server that claimed the task last, under
	// LeaseGeneration (1 for the first claim), until LeaseExpires unless
	// it renews the lease.
	LeaseOwner      string
	LeaseGeneration int64
	LeaseExpires    time.Time
	// TakenOverFrom is set by Claim when the task was claimed from
	// another server whose lease expired.
	TakenOverFrom string
	// Volumes are the task's disks in request order, each with the image
	// it is converted from.
	Volumes []*Volume
}

// A Volume is an imported volume together with the disk image it is
// converted from.
type Volume struct {
	ID, AccountID, TaskID string
	// InstanceID is the instance the volume belongs to ("" for
	// ImportVolume's).
	InstanceID string
	// Index is the volume's place in its task (DiskImage.N - 1).
	Index int
	// Size is the volume's size in GiB.
	Size             int64
	AvailabilityZone string
	State            VolumeState
	Created          time.Time
	// Description is the disk image's description.
	Description string
	// Format (VMDK, RAW, VHD), Bytes and ManifestURL are the image the
	// client declared.
	Format      string
	Bytes       int64
	ManifestURL string
	// BytesConverted, Status and StatusMessage are the conversion's
	// progress for this disk.
	BytesConverted int64
	Status         ConversionStatus
	StatusMessage  string
	// Server is the server whose data directory holds the converted
	// volume.
	Server string
	// Origin and ApplianceDisk say which disk of an OVA (Format OVA) the
	// volume holds. A volume of the request's own has Origin "": an OVA
	// disk image's holds the appliance's boot disk (ApplianceDisk 0). The
	// volumes [Store.AddVolumes] adds for the appliance's other disks
	// have Origin set to that volume's ID and ApplianceDisk to the disk's
	// number in boot order.
	Origin        string
	ApplianceDisk int
	// Kind is KindVolumeDisk ("" is taken as it) or KindSnapshotDisk: a
	// modern import task's disk, whose ID is the snapshot's (snap-), and
	// whose ManifestURL is then the disk image's Url (https://, or
	// s3://bucket/key for a UserBucket) and Format "" until the bytes
	// tell it (when the client gave none).
	Kind VolumeKind
	// DeviceName is an ImportImage disk's device (DiskContainer.N.DeviceName,
	// or "" for the default by Index).
	DeviceName string
	// SourceSnapshot is the snapshot a volume of CreateVolume copies.
	SourceSnapshot string
	// VirtualSize is a snapshot disk's image's virtual size in bytes,
	// once the worker opened it (0 before): what its progress counts to.
	VirtualSize int64
}

// A Claim is one entry of a task's claim history.
type Claim struct {
	Generation int64
	Server     string
	Claimed    time.Time
}

// An Instance is an imported instance: stopped, owning its volumes.
type Instance struct {
	ID, AccountID, TaskID string
	State                 InstanceState
	InstanceType          string
	Platform              string
	Architecture          string
	AvailabilityZone      string
	Monitoring            bool
	Launched              time.Time
	// VolumeIDs are the instance's volumes, root volume first.
	VolumeIDs []string
}

// Store is the server's durable state.
type Store interface {
	// CreateAccount adds an account with its first key pair.
	CreateAccount(ctx context.Context, a *Account, key *AccessKey) error
	// AccountCount says how many accounts exist.
	AccountCount(ctx context.Context) (int, error)
	// AccessKey returns the key pair with this id.
	AccessKey(ctx context.Context, id string) (*AccessKey, error)
	// Accounts returns the accounts, by name, and AccessKeys an account's
	// key pairs, oldest first, without their secrets.
	Accounts(ctx context.Context) ([]*Account, error)
	AccessKeys(ctx context.Context, account string) ([]*AccessKey, error)
	// RemoveAccount deletes the account named name and its key pairs
	// (ErrNotFound when there is none); its tasks, volumes and instances
	// stay, out of every account's sight.
	RemoveAccount(ctx context.Context, name string) (*Account, error)
	// RotateKey replaces every key pair of the account named name with
	// key, atomically.
	RotateKey(ctx context.Context, name string, key *AccessKey) (*Account, error)

	// CreateTask stores a new task with its volumes and, for
	// ImportInstance, its instance, atomically.
	CreateTask(ctx context.Context, t *Task, inst *Instance) error
	// Task returns one of the account's tasks.
	Task(ctx context.Context, account, id string) (*Task, error)
	// Tasks returns the account's tasks with these ids (all of them when
	// ids is empty), oldest first. A missing id is ErrNotFound.
	Tasks(ctx context.Context, account string, ids []string) ([]*Task, error)
	// Unfinished returns every account's tasks that are active or
	// cancelling, oldest first: the conversion queue.
	Unfinished(ctx context.Context) ([]*Task, error)
	// Transition moves a task from one of the states in from to state to
	// with the status message, or returns ErrState. Moving to
	// TaskCompleted makes the task's volumes available (in-use for an
	// instance's; completed snapshots for a modern import's) and, for an
	// ImportImage task, registers its image; moving to TaskCancelled
	// deletes them and terminates the instance. The task and its records
	// change together.
	Transition(ctx context.Context, id string, from []TaskState, to TaskState, message string) error
	// SetStatus sets an active task's status message when its lease
	// generation is gen (ErrState otherwise); a task in another state
	// keeps its message.
	SetStatus(ctx context.Context, id string, gen int64, message string) error
	// AddVolumes adds vols (the disks of an OVA past its boot disk, each
	// with Origin set) to an active task and its instance, atomically,
	// when the task's lease generation is gen (ErrState otherwise). A
	// volume whose Origin and ApplianceDisk the task has already is not
	// added again, so that a worker that resumes the task or takes it
	// over adds nothing twice. Each added volume takes the task's next
	// Index. It returns the task's volumes after, in Index order.
	AddVolumes(ctx context.Context, id string, gen int64, vols []*Volume) ([]*Volume, error)
	// Progress records one volume's conversion progress when its task's
	// lease generation is gen, or returns ErrState: a worker whose lease
	// another server took over writes nothing. A completed volume is
	// recorded as held by server.
	Progress(ctx context.Context, volumeID string, gen int64, server string, bytes int64, status ConversionStatus, message string) error

	// Claim gives server the oldest active task nobody holds a live lease
	// on, leased for lease under a new generation, and records the claim
	// in the task's history; nil when there is none. On PostgreSQL
	// servers claim concurrently (FOR UPDATE SKIP LOCKED).
	Claim(ctx context.Context, server string, lease time.Duration) (*Task, error)
	// Renew extends the lease of generation gen on an active task, or
	// returns ErrState (cancelled, or claimed by another server).
	Renew(ctx context.Context, id string, gen int64, lease time.Duration) error
	// CheckLease returns ErrState unless the task is active under
	// generation gen: checked before a volume is renamed into place.
	CheckLease(ctx context.Context, id string, gen int64) error
	// Release ends every lease server holds (at its start: the tasks it
	// ran before a restart are free to claim at once).
	Release(ctx context.Context, server string) error
	// Claims returns a task's claim history, oldest first.
	Claims(ctx context.Context, id string) ([]Claim, error)

	// Volumes returns the account's volumes with these ids (all not
	// deleted when ids is empty).
	Volumes(ctx context.Context, account string, ids []string) ([]*Volume, error)
	// SetVolumeState moves a volume from one of the states in from to
	// state to, or returns ErrState.
	SetVolumeState(ctx context.Context, id string, from []VolumeState, to VolumeState) error
	// OrphanedVolumes lists the deleted volumes whose files server still
	// holds (DeleteVolume answered by another server).
	OrphanedVolumes(ctx context.Context, server string) ([]string, error)
	// ForgetVolume records that server removed a deleted volume's file.
	ForgetVolume(ctx context.Context, id, server string) error
	// Instances returns the account's instances with these ids (all when
	// ids is empty).
	Instances(ctx context.Context, account string, ids []string) ([]*Instance, error)

	// CreateBundle stores a new bundle task.
	CreateBundle(ctx context.Context, b *BundleTask) error
	// Bundles returns the account's bundle tasks with these ids (all when
	// ids is empty), oldest first.
	Bundles(ctx context.Context, account string, ids []string) ([]*BundleTask, error)
	// UnfinishedBundles returns every account's bundle tasks that are not
	// complete or failed: the bundle queue.
	UnfinishedBundles(ctx context.Context) ([]*BundleTask, error)
	// UpdateBundle records a bundle task's state, progress and error when
	// its state is one of from, or returns ErrState.
	UpdateBundle(ctx context.Context, b *BundleTask, from []string) error
	// StoreBundlePart records that part index of a bundle task was
	// stored with this SHA-1 digest (hex): a restarted task does not send
	// it again.
	StoreBundlePart(ctx context.Context, bundleID string, index int, digest string) error
	// ForgetBundlePart removes the record of a stored part (its object
	// was deleted).
	ForgetBundlePart(ctx context.Context, bundleID string, index int) error
	// BundleParts returns the digests of a bundle task's stored parts by
	// index.
	BundleParts(ctx context.Context, bundleID string) (map[int]string, error)

	Modern

	// Close releases the store.
	Close() error
}
