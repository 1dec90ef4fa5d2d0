BEGIN TRANSACTION;
CREATE TABLE assignments (
	id INTEGER NOT NULL, 
	job_id VARCHAR(64) NOT NULL, 
	site_id VARCHAR(64) NOT NULL, 
	gpu_type VARCHAR(64) NOT NULL, 
	round_id INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	start_h FLOAT NOT NULL, 
	transfer_h FLOAT NOT NULL, 
	runtime_h FLOAT NOT NULL, 
	energy_kwh FLOAT NOT NULL, 
	carbon_kg FLOAT NOT NULL, 
	energy_cost_usd FLOAT NOT NULL, 
	transfer_cost_usd FLOAT NOT NULL, 
	created_at_s FLOAT NOT NULL, 
	acknowledged_at_s FLOAT, 
	started_at_s FLOAT, 
	completed_at_s FLOAT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id), 
	FOREIGN KEY(site_id) REFERENCES sites (id), 
	FOREIGN KEY(round_id) REFERENCES plan_rounds (id)
);
INSERT INTO "assignments" VALUES(1,'j0','north','V100',1,'completed',0.0,0.0,1.0,0.36,0.108,1.80000000000000021094e-02,0.0,1700000000.0,1700000000.0,1700000000.0,1700000000.0);
INSERT INTO "assignments" VALUES(2,'j2','north','V100',1,'running',0.0,0.0,1.0,0.36,0.108,1.80000000000000021094e-02,0.0,1700000000.0,1700000000.0,1700000000.0,NULL);
INSERT INTO "assignments" VALUES(3,'j1','south','P100',1,'acknowledged',0.0,0.0,1.67773473918453319697e+00,0.50332042175536,0.150996126526608,2.51660210877679944851e-02,0.0,1700000000.0,1700000000.0,NULL,NULL);
INSERT INTO "assignments" VALUES(4,'j3','south','P100',1,'assigned',0.0,0.0,1.67773473918453319697e+00,0.50332042175536,0.150996126526608,2.51660210877679944851e-02,0.0,1700000000.0,NULL,NULL,NULL);
INSERT INTO "assignments" VALUES(5,'j5','gone','V100',1,'requeued',0.0,2.22222222222222232871e-04,1.0,0.36,1.08000000000000012656e-01,1.80000000000000021094e-02,0.02,1700000000.0,NULL,NULL,NULL);
CREATE TABLE jobs (
	id VARCHAR(64) NOT NULL, 
	home_site VARCHAR(64) NOT NULL, 
	job_type VARCHAR(64) NOT NULL, 
	gpus INTEGER NOT NULL, 
	work_steps FLOAT NOT NULL, 
	submit_h FLOAT NOT NULL, 
	deadline_h FLOAT, 
	dataset_gb FLOAT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	submitted_at_s FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(home_site) REFERENCES sites (id)
);
INSERT INTO "jobs" VALUES('j0','north','resnet50',1,1.58211893639630561672e+04,0.0,NULL,1.0,'completed',1,1700000000.0);
INSERT INTO "jobs" VALUES('j1','south','resnet50',1,1.58211893639630561672e+04,0.0,NULL,1.0,'acknowledged',1,1700000000.0);
INSERT INTO "jobs" VALUES('j2','north','resnet50',1,1.58211893639630561672e+04,0.0,NULL,1.0,'running',1,1700000000.0);
INSERT INTO "jobs" VALUES('j3','south','resnet50',1,1.58211893639630561672e+04,0.0,NULL,1.0,'assigned',1,1700000000.0);
INSERT INTO "jobs" VALUES('j4','north','resnet50',1,1.58211893639630561672e+04,0.0,NULL,1.0,'queued',0,1700000000.0);
INSERT INTO "jobs" VALUES('j5','south','resnet50',1,1.58211893639630561672e+04,0.0,NULL,1.0,'queued',1,1700000000.0);
CREATE TABLE meta (
	"key" VARCHAR(64) NOT NULL, 
	value VARCHAR(256) NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "meta" VALUES('schema_version','1');
INSERT INTO "meta" VALUES('clock_origin_s','1700000000.0');
INSERT INTO "meta" VALUES('admin_token_sha256','b98c9b93bcac5ddbf030a130b46430d0cac4e591c55b0c65072eebb9c4739985');
CREATE TABLE offers (
	site_id VARCHAR(64) NOT NULL, 
	sequence INTEGER NOT NULL, 
	start_h FLOAT NOT NULL, 
	slot_h FLOAT NOT NULL, 
	free_gpus JSON NOT NULL, 
	price_usd_per_mwh JSON NOT NULL, 
	carbon_g_per_kwh JSON NOT NULL, 
	received_at_s FLOAT NOT NULL, 
	PRIMARY KEY (site_id), 
	FOREIGN KEY(site_id) REFERENCES sites (id)
);
INSERT INTO "offers" VALUES('north',3,0.0,1.0,'{"V100": [2, 2, 2, 2, 2, 2]}','[50.0, 50.0, 50.0, 50.0, 50.0, 50.0]','[300.0, 300.0, 300.0, 300.0, 300.0, 300.0]',1700000000.0);
INSERT INTO "offers" VALUES('south',3,0.0,1.0,'{"K80": [4, 4, 4, 4, 4, 4], "P100": [2, 2, 2, 2, 2, 2]}','[50.0, 50.0, 50.0, 50.0, 50.0, 50.0]','[300.0, 300.0, 300.0, 300.0, 300.0, 300.0]',1700000000.0);
CREATE TABLE plan_rounds (
	id INTEGER NOT NULL, 
	now_h FLOAT NOT NULL, 
	created_at_s FLOAT NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	objective_usd FLOAT, 
	bound_usd FLOAT, 
	n_options INTEGER NOT NULL, 
	queued INTEGER NOT NULL, 
	solve_time_s FLOAT NOT NULL, 
	"plan" JSON NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "plan_rounds" VALUES(1,0.0,1700000000.0,'optimal',1.84110500678492439163e-01,1.84110500678492439163e-01,48,6,9.91708900005505711305e-03,'{"planned": [{"job_id": "j0", "site_id": "north", "gpu_type": "V100", "start_offset": 0, "start_h": 0.0}, {"job_id": "j2", "site_id": "north", "gpu_type": "V100", "start_offset": 0, "start_h": 0.0}, {"job_id": "j4", "site_id": "north", "gpu_type": "V100", "start_offset": 1, "start_h": 1.0}, {"job_id": "j1", "site_id": "south", "gpu_type": "P100", "start_offset": 0, "start_h": 0.0}, {"job_id": "j3", "site_id": "south", "gpu_type": "P100", "start_offset": 0, "start_h": 0.0}, {"job_id": "j5", "site_id": "gone", "gpu_type": "V100", "start_offset": 0, "start_h": 0.0}], "deferred": [], "requeued": [], "assigned": [1, 2, 3, 4, 5]}');
CREATE TABLE sites (
	id VARCHAR(64) NOT NULL, 
	number INTEGER NOT NULL, 
	zone VARCHAR(64) NOT NULL, 
	gpus JSON NOT NULL, 
	pue FLOAT NOT NULL, 
	egress_usd_per_gb FLOAT NOT NULL, 
	token_sha256 VARCHAR(64), 
	active BOOLEAN NOT NULL, 
	registered_at_s FLOAT NOT NULL, 
	deregistered_at_s FLOAT, 
	PRIMARY KEY (id), 
	UNIQUE (number), 
	UNIQUE (token_sha256)
);
INSERT INTO "sites" VALUES('north',1,'z-north','{"V100": 2}',1.2,0.02,'4595c8548b0940eab1bc455b34c9536c2b0d88b1c5d3e6912e5afbaf4f50fa09',1,1700000000.0,NULL);
INSERT INTO "sites" VALUES('south',2,'z-south','{"K80": 4, "P100": 2}',1.2,0.02,'3d89d7224ca2fad4c193ab357338bf6870215728634220e397fc7e5bed24747b',1,1700000000.0,NULL);
INSERT INTO "sites" VALUES('gone',3,'z-gone','{"V100": 1}',1.2,0.02,NULL,0,1700000000.0,1700000000.0);
CREATE INDEX ix_jobs_status ON jobs (status);
CREATE INDEX ix_assignments_job ON assignments (job_id);
CREATE INDEX ix_assignments_site_status ON assignments (site_id, status);
COMMIT;
